/** Request filters on candidate features and pinned positions (also honoured by the fallback). */
import { describe, expect, it } from "vitest";
import { createApp } from "../../edge/app.ts";
import { arrange } from "../../edge/rerank/arrange.ts";
import {
  candidates,
  type Fetch,
  manifest,
  type ProblemBody,
  postRerank,
  type RerankBody,
  rerankBody,
} from "./requests.ts";

const list = candidates(12).map((c, i) => ({
  ...c,
  features: { ...c.features, rank_tag: i % 3, shelf: i < 6 ? "a" : "b" },
}));

async function rerank(
  extra: Record<string, unknown>,
  fetch?: Fetch,
): Promise<RerankBody & { removed: { duplicates: number; filtered: number } }> {
  const res = await postRerank(rerankBody({ candidates: list, ...extra }), fetch);
  expect(res.status).toBe(200);
  return (await res.json()) as RerankBody & { removed: { duplicates: number; filtered: number } };
}

describe("filters", () => {
  it("drops candidates failing any filter and reports how many", async () => {
    const body = await rerank({
      filters: [
        { field: "shelf", op: "eq", value: "a" },
        { field: "rank_tag", op: "not_in", value: [0] },
      ],
    });
    const expected = list
      .filter((c) => c.features.shelf === "a" && c.features.rank_tag !== 0)
      .map((c) => c.id);
    expect(body.items.map((i) => i.id).sort()).toEqual(expected.sort());
    expect(body.removed).toEqual({ duplicates: 0, filtered: list.length - expected.length });
  });

  it("compares numbers; a missing or non-numeric value fails a numeric comparison", async () => {
    const body = await rerank({ filters: [{ field: "rank_tag", op: "gte", value: 2 }] });
    expect(body.items.map((i) => i.id).sort()).toEqual(
      list
        .filter((c) => c.features.rank_tag >= 2)
        .map((c) => c.id)
        .sort(),
    );
    expect((await rerank({ filters: [{ field: "absent", op: "lt", value: 1e9 }] })).items).toEqual([]);
  });

  it.each([
    [{ field: "shelf", op: "in", value: "a" }, /in and not_in take a list/],
    [{ field: "shelf", op: "lt", value: "a" }, /take a number/],
    [{ field: "shelf", op: "like", value: "a" }, /filters\.0\.op/],
    [{ field: "", op: "eq", value: 1 }, /filters\.0\.field/],
  ])("rejects a malformed filter %j with 400 naming it", async (filter, message) => {
    const res = await postRerank(rerankBody({ candidates: list, filters: [filter] }));
    expect(res.status).toBe(400);
    expect(((await res.json()) as ProblemBody).detail).toMatch(message);
  });
});

describe("pinned positions", () => {
  it("places pinned ids at their positions and keeps the ranked order around them", async () => {
    const free = await rerank({});
    const last = free.items.at(-1)!.id;
    const pinned = await rerank({
      pinned: [
        { id: last, position: 0 },
        { id: "not-a-candidate", position: 1 },
      ],
      topK: 5,
    });
    expect(pinned.items.map((i) => i.id)).toEqual([
      last,
      ...free.items
        .filter((i) => i.id !== last)
        .slice(0, 4)
        .map((i) => i.id),
    ]);
  });

  it("the fallback order honours filters and pins too", async () => {
    const broken = createApp({ manifest, model: new Uint8Array([0]).buffer });
    const body = await rerank(
      { filters: [{ field: "shelf", op: "eq", value: "b" }], pinned: [{ id: "c11", position: 0 }], topK: 3 },
      async (request) => broken.fetch(request),
    );
    expect(body.fallback).toBe(true);
    expect(body.items.map((i) => i.id)).toEqual(["c11", "c6", "c7"]);
  });
});

describe("arrange", () => {
  const cands = ["a", "b", "c", "d", "e"].map((id) => ({ id }));
  it("handles several pins, a pin past the end, and the same id pinned twice", () => {
    expect(
      arrange(
        [4, 3, 2, 1, 0],
        cands,
        [
          { id: "a", position: 1 },
          { id: "b", position: 9 },
          { id: "a", position: 3 },
        ],
        undefined,
      ),
    ).toEqual([4, 0, 3, 2, 1]);
    expect(arrange([0, 1, 2], cands.slice(0, 3), [{ id: "c", position: 0 }], 2)).toEqual([2, 0]);
  });
});
