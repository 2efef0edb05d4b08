/**
 * Property-based fuzz of POST /v1/rerank bodies: whatever a client sends, the worker answers
 * 200 with a well-formed list, or a 4xx problem+json, never a 5xx.
 *
 * Requests go to the worker's own app (the default export of edge/index.ts, with the bundled
 * model loaded at start-up) rather than through `exports.default.fetch`: the test pool's
 * loopback slows down with every request it has served (measured: 3.5 ms → 100 ms per request
 * over 600), which would make thousands of cases take minutes.
 */
import fc from "fast-check";
import { describe, expect, it, vi } from "vitest";
import app from "../../edge/index.ts";
import { bodyArb } from "./fuzz-bodies.ts";
import { type Fetch, postRerank } from "./requests.ts";

/** No API keys or CORS origins configured: the rules under test are the request rules. */
/**
 * 2,000 cases in the suite; `npm run bench:fuzz` runs more (VITE_FUZZ_RUNS, read by Vite when it
 * transforms this file, so it reaches workerd) with a seed of its own (VITE_FUZZ_SEED).
 */
const env = (import.meta as ImportMeta & { env: Record<string, string | undefined> }).env;
const RUNS = Number(env.VITE_FUZZ_RUNS ?? 2000);
const SEED = Number(env.VITE_FUZZ_SEED ?? 20261123);

const direct: Fetch = async (request) => app.fetch(request, {});

describe("rerank fuzz", () => {
  it(
    `never answers 5xx; 200 bodies are well-formed lists, errors are problem+json (${RUNS} cases, seed ${SEED})`,
    async () => {
      let served = 0;
      await fc.assert(
        fc.asyncProperty(bodyArb, async (payload) => {
          const res = await postRerank(payload, direct);
          expect(res.status).toBeLessThan(500);
          const json = (await res.json()) as Record<string, unknown>;
          if (res.status === 200) {
            served += 1;
            expect(json.fallback).toBe(false);
            const items = json.items as { id: unknown; score: unknown; heads: Record<string, unknown> }[];
            expect(Array.isArray(items)).toBe(true);
            for (const item of items) {
              expect(typeof item.id).toBe("string");
              expect(Number.isFinite(item.score)).toBe(true);
              for (const p of Object.values(item.heads)) expect(Number.isFinite(p)).toBe(true);
            }
            const ids = items.map((i) => i.id);
            expect(new Set(ids).size).toBe(ids.length);
          } else {
            expect(res.headers.get("content-type")).toBe("application/problem+json");
            expect(json.status).toBe(res.status);
            expect(typeof json.detail).toBe("string");
          }
        }),
        { numRuns: RUNS, seed: SEED },
      );
      // The generator is meant to reach the model, not only the validator.
      expect(served).toBeGreaterThan(RUNS * 0.3);
    },
    60_000 + RUNS * 20,
  );
});

describe("proxy path fuzz", () => {
  const ORIGIN = "https://origin.test";
  const proxy = {
    MTRANK_PROXY: { origin: ORIGIN, routes: [{ path: "/api/*", list: "items" }] },
    MTRANK_API_KEYS: "fuzz-key",
  };
  const segment = fc.oneof(
    fc.constantFrom(
      "",
      "/",
      "//",
      "\\",
      ".",
      "..",
      "%2F",
      "%2f",
      "%5C",
      "%2e%2e",
      "@",
      ":",
      "v1",
      "api",
      "evil.test",
    ),
    fc.string({ unit: "grapheme", maxLength: 6 }),
  );
  const pathArb = fc.array(segment, { minLength: 1, maxLength: 10 }).map((parts) => `/${parts.join("")}`);
  const runs = Math.max(200, Math.round(RUNS / 4));

  it(`every proxied request goes to the configured origin, without the worker's key; never a 5xx (${runs} cases)`, async () => {
    const fetched: Request[] = [];
    const spy = vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
      fetched.push(new Request(input, init));
      return new Response('{"items": [{"id": "a"}, {"id": "b"}]}', {
        headers: { "content-type": "application/json" },
      });
    });
    const logs = vi.spyOn(console, "log").mockImplementation(() => undefined);
    try {
      await fc.assert(
        fc.asyncProperty(pathArb, fc.constantFrom("GET", "POST", "HEAD", "DELETE"), async (path, method) => {
          const before = fetched.length;
          let request: Request;
          try {
            request = new Request(`https://shop.test${path}`, {
              method,
              headers: { authorization: "Bearer fuzz-key" },
            });
          } catch {
            return; // Not a URL a client could send.
          }
          const res = await app.fetch(request, proxy);
          expect(res.status).toBeLessThan(500);
          const own = new URL(request.url).pathname;
          // /v1 and everything under it is the worker's own namespace, like its two open routes.
          if (own === "/v1" || own.startsWith("/v1/") || own === "/healthz" || own === "/openapi.json") {
            expect(fetched.length).toBe(before);
            return;
          }
          expect(fetched.length).toBe(before + 1);
          const sent = fetched.at(-1)!;
          expect(new URL(sent.url).origin).toBe(ORIGIN);
          expect(sent.headers.get("authorization")).toBeNull();
        }),
        { numRuns: runs, seed: SEED },
      );
    } finally {
      spy.mockRestore();
      logs.mockRestore();
    }
  });
});
