/** One JSON line per request on console.log, with what a log search needs to find it. */
import { afterEach, beforeEach, describe, expect, it, type MockInstance, vi } from "vitest";
import { createApp } from "../../edge/app.ts";
import modelBytes from "../../fixtures/model/model.onnx";
import { candidates, type Fetch, get, manifest, postRerank, rerankBody } from "./requests.ts";

let logged: MockInstance<typeof console.log>;
beforeEach(() => {
  logged = vi.spyOn(console, "log").mockImplementation(() => undefined);
});
afterEach(() => {
  logged.mockRestore();
});

const app = createApp({ manifest, model: modelBytes });
const fetch: Fetch = async (request) => app.fetch(request, {});

/**
 * The request lines logged so far. The isolate's once-only warnings (`auth.open`,
 * `auth.short_key`) go to the same log on its first request, whichever test file that is in.
 */
function lines(): Record<string, unknown>[] {
  return logged.mock.calls
    .map((call) => {
      expect(call).toHaveLength(1);
      return JSON.parse(String(call[0])) as Record<string, unknown>;
    })
    .filter((line) => line.event === "request");
}

describe("request log", () => {
  it("a rerank -> one info line with method, path, status, ms, candidates and the model", async () => {
    const before = Date.now();
    const res = await postRerank(rerankBody({ candidates: [...candidates(7), { id: "c1" }] }), fetch);
    expect(res.status).toBe(200);
    const [line, ...rest] = lines();
    expect(rest).toEqual([]);
    expect(line).toMatchObject({
      level: "info",
      event: "request",
      method: "POST",
      path: "/v1/rerank",
      status: 200,
      candidates: 8,
      model: { id: manifest.id, version: manifest.version },
    });
    expect(line).not.toHaveProperty("fallback");
    expect(typeof line!.ms).toBe("number");
    expect(line!.ms as number).toBeGreaterThanOrEqual(0);
    const ts = Date.parse(String(line!.ts));
    expect(ts).toBeGreaterThanOrEqual(before - 1000);
    expect(ts).toBeLessThanOrEqual(Date.now());
  });

  it("a bad request -> warn line with its 4xx status; an unknown path -> 404 line", async () => {
    await postRerank({ candidates: "none" }, fetch);
    await get("/nope", fetch);
    await get("/healthz", fetch);
    expect(lines().map((l) => [l.level, l.method, l.path, l.status])).toEqual([
      ["warn", "POST", "/v1/rerank", 400],
      ["warn", "GET", "/nope", 404],
      ["info", "GET", "/healthz", 200],
    ]);
  });

  it("a fallback -> error line naming the reason and the error", async () => {
    const broken = createApp({ manifest, model: new Uint8Array([7, 7, 7]).buffer });
    const res = await postRerank({ candidates: candidates(3) }, async (r) => broken.fetch(r, {}));
    expect(res.status).toBe(200);
    const [line] = lines();
    expect(line).toMatchObject({
      level: "error",
      status: 200,
      fallback: "model_unavailable",
      candidates: 3,
      model: { id: manifest.id },
    });
    expect(String(line!.error)).toMatch(/\w+: /);
  });

  it("a request refused by auth is logged too", async () => {
    await app.fetch(new Request("http://mtrank.test/v1/models"), { MTRANK_API_KEYS: "k" });
    expect(lines()).toMatchObject([{ level: "warn", path: "/v1/models", status: 401 }]);
  });
});
