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
import { describe, expect, it } from "vitest";
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
