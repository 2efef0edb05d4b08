/** GET routes and unknown paths, through the worker inside workerd. */
import { beforeAll, describe, expect, it } from "vitest";
import { get, manifest, worker } from "./requests.ts";

beforeAll(async () => {
  await get("/healthz");
});

describe("GET routes", () => {
  it("/healthz -> 200 {status: ok}, saying the API is open when no key is set", async () => {
    const res = await get("/healthz");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "ok", auth: "open" });
  });

  it("/v1/models -> the manifest summary", async () => {
    const res = await get("/v1/models");
    expect(res.status).toBe(200);
    const body = (await res.json()) as { models: Record<string, unknown>[] };
    expect(body.models).toHaveLength(1);
    expect(body.models[0]).toEqual({
      id: manifest.id,
      version: manifest.version,
      arch: manifest.arch,
      heads: manifest.heads.map((h) => ({ name: h.name, type: h.type })),
      createdAt: manifest.createdAt,
      metrics: manifest.metrics,
      files: manifest.files,
      arm: "champion",
    });
  });

  it("an unknown path -> 404 problem+json", async () => {
    const res = await get("/nope");
    expect(res.status).toBe(404);
    expect(res.headers.get("content-type")).toBe("application/problem+json");
  });

  it("GET /v1/rerank -> 405 with Allow: POST", async () => {
    const res = await worker(new Request("http://mtrank.test/v1/rerank"));
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toBe("POST");
    expect(res.headers.get("content-type")).toBe("application/problem+json");
  });
});
