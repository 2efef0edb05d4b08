/** POST /v1/rerank through the worker (wrangler.toml main) inside workerd, on the bundled model. */
import { beforeAll, describe, expect, it } from "vitest";
import {
  candidates,
  get,
  headNames,
  isSortedByScore,
  manifest,
  postRerank,
  type RerankBody,
  rerankBody,
  weightedSum,
} from "./requests.ts";

const defaults = manifest.fusion.defaults;

async function rerank(extra: Record<string, unknown> & { candidates: unknown }): Promise<RerankBody> {
  const res = await postRerank(rerankBody(extra));
  expect(res.status).toBe(200);
  const body = (await res.json()) as RerankBody;
  expect(body.fallback).toBe(false);
  return body;
}

beforeAll(async () => {
  await get("/healthz"); // loads the worker (and ORT's wasm) once, under the hook timeout
});

describe("POST /v1/rerank", () => {
  it("runs in workerd", () => {
    expect(navigator.userAgent).toBe("Cloudflare-Workers");
  });

  it("reorders candidates by the fused score (default weights), not by input order", async () => {
    const list = candidates(24);
    const first = await rerank({ candidates: list });
    expect(first.items.map((i) => i.id).sort()).toEqual(list.map((c) => c.id).sort());
    for (const item of first.items) {
      expect(Object.keys(item.heads).sort()).toEqual([...headNames].sort());
      for (const h of manifest.heads)
        if (h.type === "binary") {
          expect(item.heads[h.name]).toBeGreaterThanOrEqual(0);
          expect(item.heads[h.name]).toBeLessThanOrEqual(1);
        }
      expect(item.score).toBeCloseTo(weightedSum(item, defaults.weights), 9);
    }
    expect(isSortedByScore(first.items)).toBe(true);
    const distinct = new Set(first.items.map((i) => i.score));
    expect(distinct.size).toBeGreaterThan(1);

    // Send the same candidates worst-first: the model's order now differs from the input order.
    const byId = new Map(list.map((c) => [c.id, c]));
    const worstFirst = [...first.items].reverse().map((i) => byId.get(i.id)!);
    const second = await rerank({ candidates: worstFirst });
    expect(second.items.map((i) => i.id)).not.toEqual(worstFirst.map((c) => c.id));
    expect(isSortedByScore(second.items)).toBe(true);
    const scores = new Map(first.items.map((i) => [i.id, i.score]));
    for (const item of second.items) expect(item.score).toBeCloseTo(scores.get(item.id)!, 6);
  });

  it("sets x-model-version and a Server-Timing header with the phases", async () => {
    const res = await postRerank(rerankBody({ candidates: candidates(3) }));
    expect(res.headers.get("x-model-version")).toBe(manifest.version);
    expect(res.headers.get("x-mtrank-fallback")).toBeNull();
    const timing = res.headers.get("server-timing") ?? "";
    for (const phase of ["read", "parse", "encode", "infer", "fuse"])
      expect(timing).toMatch(new RegExp(`${phase};dur=`));
    const body = (await res.json()) as RerankBody;
    expect(body.model).toEqual({ id: manifest.id, version: manifest.version });
  });

  it("weights choose the heads that rank", async () => {
    const list = candidates(24);
    const orders: string[][] = [];
    for (const head of headNames) {
      const body = await rerank({ candidates: list, weights: { [head]: 1 } });
      for (const item of body.items) expect(item.score).toBeCloseTo(item.heads[head]!, 9);
      expect(isSortedByScore(body.items)).toBe(true);
      orders.push(body.items.map((i) => i.id));
    }
    if (headNames.length > 1) expect(orders[1]).not.toEqual(orders[0]);

    const weights = Object.fromEntries(headNames.map((h, i) => [h, i + 0.5]));
    const mixed = await rerank({ candidates: list, weights });
    for (const item of mixed.items) expect(item.score).toBeCloseTo(weightedSum(item, weights), 9);
    expect(isSortedByScore(mixed.items)).toBe(true);
  });

  it("product fusion scores Σ w·log p", async () => {
    const weights = Object.fromEntries(headNames.map((h) => [h, 1]));
    const body = await rerank({ candidates: candidates(10), weights, fusion: "product" });
    for (const item of body.items)
      expect(item.score).toBeCloseTo(
        headNames.reduce((s, h) => s + Math.log(Math.max(item.heads[h]!, 1e-12)), 0),
        6,
      );
    expect(isSortedByScore(body.items)).toBe(true);
  });

  it("topK truncates the ranked list", async () => {
    const list = candidates(12);
    const full = await rerank({ candidates: list });
    const top = await rerank({ candidates: list, topK: 3 });
    expect(top.items.map((i) => i.id)).toEqual(full.items.slice(0, 3).map((i) => i.id));
    expect((await rerank({ candidates: list, topK: 0 })).items).toEqual([]);
    expect((await rerank({ candidates: list, topK: 100 })).items).toHaveLength(12);
  });

  it("explain adds per-head contributions that sum to the score", async () => {
    const body = await rerank({ candidates: candidates(5), explain: true });
    for (const item of body.items) {
      const shares = item.contributions!;
      expect(Object.keys(shares).sort()).toEqual([...headNames].sort());
      expect(Object.values(shares).reduce((a, b) => a + b, 0)).toBeCloseTo(item.score, 9);
    }
    const plain = await rerank({ candidates: candidates(5) });
    expect(plain.items[0]!.contributions).toBeUndefined();
  });

  it("an empty candidate list gives 200 with no items", async () => {
    const body = await rerank({ candidates: [] });
    expect(body.items).toEqual([]);
  });

  it("works without user, context or features", async () => {
    const res = await postRerank({ candidates: [{ id: "a" }, { id: "b", features: {} }] });
    expect(res.status).toBe(200);
    const body = (await res.json()) as RerankBody;
    expect(body.fallback).toBe(false);
    expect(body.items.map((i) => i.id).sort()).toEqual(["a", "b"]);
  });

  it("keeps the first of duplicate candidate ids", async () => {
    const [a, b] = candidates(2);
    const body = await rerank({ candidates: [a, b, { ...a!, features: b!.features }] });
    expect(body.items).toHaveLength(2);
    const again = await rerank({ candidates: [a, b] });
    expect(body.items).toEqual(again.items);
  });
});
