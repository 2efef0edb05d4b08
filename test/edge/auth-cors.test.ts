/** API keys (MTRANK_API_KEYS secret) and the CORS allow-list (MTRANK_CORS_ORIGINS). */
import { describe, expect, it, vi } from "vitest";
import { createApp } from "../../edge/app.ts";
import type { EdgeEnv } from "../../edge/env.ts";
import modelBytes from "../../fixtures/model/model.onnx";
import { candidates, manifest, type ProblemBody, rerankBody } from "./requests.ts";

const app = createApp({ manifest, model: modelBytes });

function call(path: string, init: RequestInit, env: EdgeEnv): Promise<Response> {
  return Promise.resolve(app.fetch(new Request(`http://mtrank.test${path}`, init), env));
}

const rerank = (headers: Record<string, string>) => ({
  method: "POST",
  headers: { "content-type": "application/json", ...headers },
  body: JSON.stringify(rerankBody({ candidates: candidates(3) })),
});

describe("API keys", () => {
  const env: EdgeEnv = { MTRANK_API_KEYS: "key-one, key-two" };

  it("/healthz says how the API is guarded: api-key, open, or misconfigured", async () => {
    const auth = async (e: EdgeEnv) =>
      ((await (await call("/healthz", {}, e)).json()) as { auth: string }).auth;
    expect(await auth(env)).toBe("api-key");
    expect(await auth({})).toBe("open");
    expect(await auth({ MTRANK_API_KEYS: "has space,ünïcode" })).toBe("misconfigured");
  });

  it("an open API and unusable keys are logged once, never with the key itself", async () => {
    const logged = vi.spyOn(console, "log").mockImplementation(() => undefined);
    try {
      const once = { MTRANK_API_KEYS: "good-key_1, bad key;secret, tail==" };
      for (let i = 0; i < 3; i++)
        await call("/v1/models", { headers: { authorization: "Bearer good-key_1" } }, once);
      const lines = logged.mock.calls.map((c) => JSON.parse(String(c[0])) as Record<string, unknown>);
      const invalid = lines.filter((l) => l.event === "config.invalid");
      expect(invalid).toHaveLength(1);
      expect(String(invalid[0]!.error)).toMatch(/MTRANK_API_KEYS: key 2 \(of 3\)/);
      expect(JSON.stringify(lines)).not.toContain("secret");
      expect(lines.filter((l) => l.event === "request").map((l) => l.status)).toEqual([200, 200, 200]);
      // The usable keys still work; "tail==" is a valid token with padding.
      const padded = await call("/v1/models", { headers: { authorization: "Bearer tail==" } }, once);
      expect(padded.status).toBe(200);
    } finally {
      logged.mockRestore();
    }
  });

  it("a usable key under 16 characters is logged once as guessable, by position, never the key", async () => {
    const logged = vi.spyOn(console, "log").mockImplementation(() => undefined);
    try {
      const keys = { MTRANK_API_KEYS: "k7, a-long-random-key-0123456789abcdef, shorty" };
      for (let i = 0; i < 2; i++)
        expect((await call("/v1/models", { headers: { authorization: "Bearer k7" } }, keys)).status).toBe(
          200,
        );
      const lines = logged.mock.calls.map((c) => JSON.parse(String(c[0])) as Record<string, unknown>);
      const short = lines.filter((l) => l.event === "auth.short_key");
      expect(short).toHaveLength(1);
      expect(String(short[0]!.detail)).toMatch(/MTRANK_API_KEYS: key 1, 3 \(of 3\) is under 16 characters/);
      expect(JSON.stringify(short)).not.toMatch(/k7|shorty/);
    } finally {
      logged.mockRestore();
    }
  });

  it("keys set but none usable -> 503 problem on /v1/*, never an open API", async () => {
    const broken = { MTRANK_API_KEYS: "not a token" };
    const res = await call("/v1/rerank", rerank({ authorization: "Bearer not a token" }), broken);
    expect(res.status).toBe(503);
    expect(((await res.json()) as ProblemBody).type).toBe("urn:mtrank:problem:auth-misconfigured");
  });

  it("without MTRANK_API_KEYS, no key is needed", async () => {
    expect((await call("/v1/rerank", rerank({}), {})).status).toBe(200);
  });

  it("401 problem+json without a key or with a wrong one; 200 with either configured key", async () => {
    const attempts: Record<string, string>[] = [
      {},
      { authorization: "Bearer nope" },
      { authorization: "Basic a2V5LW9uZQ==" },
    ];
    for (const headers of attempts) {
      const res = await call("/v1/rerank", rerank(headers), env);
      expect(res.status).toBe(401);
      expect(res.headers.get("content-type")).toBe("application/problem+json");
      expect(res.headers.get("www-authenticate")).toMatch(/^Bearer/);
      expect(((await res.json()) as ProblemBody).type).toBe("urn:mtrank:problem:unauthorized");
    }
    for (const key of ["key-one", "key-two"]) {
      expect((await call("/v1/rerank", rerank({ authorization: `Bearer ${key}` }), env)).status).toBe(200);
    }
  });

  it("protects /v1/models too, but not /healthz", async () => {
    expect((await call("/v1/models", {}, env)).status).toBe(401);
    expect((await call("/healthz", {}, env)).status).toBe(200);
  });
});

describe("CORS", () => {
  const env: EdgeEnv = { MTRANK_CORS_ORIGINS: "https://shop.example", MTRANK_API_KEYS: "k" };

  it("answers a preflight from an allowed origin without needing the key", async () => {
    const res = await call(
      "/v1/rerank",
      {
        method: "OPTIONS",
        headers: {
          origin: "https://shop.example",
          "access-control-request-method": "POST",
          "access-control-request-headers": "authorization, content-type",
        },
      },
      env,
    );
    expect(res.status).toBe(204);
    expect(res.headers.get("access-control-allow-origin")).toBe("https://shop.example");
    expect(res.headers.get("access-control-allow-headers")).toMatch(/authorization/);
  });

  it("allows listed origins only, and exposes the model headers", async () => {
    const allowed = await call(
      "/v1/rerank",
      rerank({ origin: "https://shop.example", authorization: "Bearer k" }),
      env,
    );
    expect(allowed.status).toBe(200);
    expect(allowed.headers.get("access-control-allow-origin")).toBe("https://shop.example");
    expect(allowed.headers.get("access-control-expose-headers")).toMatch(/x-model-version/);
    const other = await call(
      "/v1/rerank",
      rerank({ origin: "https://evil.example", authorization: "Bearer k" }),
      env,
    );
    expect(other.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("a 401 to an allowed origin is still readable by the page", async () => {
    const res = await call("/v1/rerank", rerank({ origin: "https://shop.example" }), env);
    expect(res.status).toBe(401);
    expect(res.headers.get("access-control-allow-origin")).toBe("https://shop.example");
  });
});
