/** Permutation importance on a hand-made predictor whose dependence on each feature is known. */
import { describe, expect, it } from "vitest";
import type { EncodedBatch } from "../../shared/encoder/encode.ts";
import type { EncoderState } from "../../shared/encoder/state.ts";
import { createRng } from "../../trainer/core/rng.ts";
import { encodedColumns, permutationImportance, permuteColumns } from "../../trainer/evaluate/importance.ts";

// Two numeric features (dense columns 0-1 and 2-3) and one categorical (id slot 0).
const state: EncoderState = {
  version: 1,
  trim: true,
  missing: [""],
  denseSize: 4,
  idSlots: 1,
  vocabSize: 12,
  features: [
    { kind: "numeric", name: "signal", side: "item", mean: 0, std: 1, clip: 5, denseOffset: 0 },
    { kind: "numeric", name: "noise", side: "item", mean: 0, std: 1, clip: 5, denseOffset: 2 },
    { kind: "categorical", name: "shop", side: "item", slot: 0, offset: 0, size: 12, vocab: [] },
  ],
};

function fixture(n: number): { batch: EncodedBatch; labels: Record<string, Float32Array> } {
  const rng = createRng(11);
  const batch: EncodedBatch = { rows: n, dense: new Float32Array(n * 4), ids: new Int32Array(n) };
  const click = new Float32Array(n);
  const dwell = new Float32Array(n);
  for (let r = 0; r < n; r++) {
    const signal = rng.normal();
    batch.dense[r * 4] = signal;
    batch.dense[r * 4 + 2] = rng.normal();
    batch.ids[r] = 2 + rng.int(10);
    click[r] = rng.uniform() < 1 / (1 + Math.exp(-3 * signal)) ? 1 : 0;
    dwell[r] = batch.ids[r]! / 4 + 0.1 * rng.normal();
  }
  return { batch, labels: { click, dwell } };
}

// click reads only "signal"; dwell reads only "shop".
async function predict(batch: EncodedBatch): Promise<Record<string, Float32Array>> {
  const click = new Float32Array(batch.rows);
  const dwell = new Float32Array(batch.rows);
  for (let r = 0; r < batch.rows; r++) {
    click[r] = 1 / (1 + Math.exp(-3 * batch.dense[r * 4]!));
    dwell[r] = batch.ids[r]! / 4;
  }
  return { click, dwell };
}

const heads = [
  { name: "click", type: "binary" as const },
  { name: "dwell", type: "regression" as const },
];

describe("permutation importance", () => {
  it("finds the feature each task reads and gives the others no weight", async () => {
    const { batch, labels } = fixture(2000);
    const report = await permutationImportance(state, batch, labels, heads, predict, { seed: 3 });
    const drop = Object.fromEntries(report.features.map((f) => [f.feature, f.drop]));
    expect(report.metric).toEqual({ click: "auc", dwell: "mse" });
    expect(drop.signal!.click).toBeGreaterThan(0.2);
    expect(drop.noise!.click).toBe(0);
    expect(drop.shop!.click).toBe(0);
    expect(drop.shop!.dwell).toBeGreaterThan(0.5);
    expect(drop.signal!.dwell).toBe(0);
    expect(report.baseline.click).toBeGreaterThan(0.75);
  });

  it("is reproducible for a seed, samples rows when asked, and averages repeats", async () => {
    const { batch, labels } = fixture(600);
    const a = await permutationImportance(state, batch, labels, heads, predict, { seed: 5, maxRows: 300 });
    const b = await permutationImportance(state, batch, labels, heads, predict, { seed: 5, maxRows: 300 });
    const c = await permutationImportance(state, batch, labels, heads, predict, { seed: 6, maxRows: 300 });
    expect(a).toEqual(b);
    expect(a.rows).toBe(300);
    expect(c.features[0]!.drop.click).not.toBe(a.features[0]!.drop.click);
    const r3 = await permutationImportance(state, batch, labels, heads, predict, { seed: 5, repeats: 3 });
    expect(r3.repeats).toBe(3);
    await expect(permutationImportance(state, batch, labels, heads, predict, { repeats: 0 })).rejects.toThrow(
      /repeats/,
    );
  });

  it("moves a feature's columns together and leaves the rest of each row alone", () => {
    const { batch } = fixture(50);
    const order = Array.from({ length: 50 }, (_, i) => (i * 17) % 50);
    const columns = encodedColumns({
      kind: "numeric",
      name: "x",
      side: "item",
      mean: 0,
      std: 1,
      clip: 5,
      denseOffset: 2,
      buckets: { slot: 0, offset: 0, size: 5, boundaries: [] },
    });
    expect(columns).toEqual({ dense: [2, 3], ids: [0] });
    const out = permuteColumns(batch, columns, order, state);
    for (let r = 0; r < 50; r++) {
      expect(out.dense[r * 4]).toBe(batch.dense[r * 4]);
      expect(out.dense[r * 4 + 2]).toBe(batch.dense[order[r]! * 4 + 2]);
      expect(out.ids[r]).toBe(batch.ids[order[r]!]);
    }
    expect(out.dense[4 + 2]).not.toBe(batch.dense[4 + 2]); // row 1 took row 17's value: a copy, not in place
  });
});
