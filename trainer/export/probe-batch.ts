/** Synthetic encoded inputs on which exported graphs are compared with each other. */
import type { EncodedBatch } from "../../shared/encoder/encode.ts";
import { type EncoderState, encodedColumns, idSlotLayout, MISSING_ID } from "../../shared/encoder/state.ts";
import { createRng } from "../core/rng.ts";

/**
 * Seeded random inputs: numeric features ~N(0, 1) clipped (10% missing), ids uniform over each
 * feature's rows (frequency and target columns ~N(0, 1)), bags of 0..maxValues values weighted
 * 1/k, vectors ~N(0, 1) (10% missing).
 */
export function probeBatch(state: EncoderState, rows: number, seed = 1): EncodedBatch {
  const rng = createRng(seed);
  const batch: EncodedBatch = {
    rows,
    dense: new Float32Array(rows * state.denseSize),
    ids: new Int32Array(rows * state.idSlots),
  };
  const slots = idSlotLayout(state);
  for (let r = 0; r < rows; r++) {
    const dense = r * state.denseSize;
    const ids = r * state.idSlots;
    for (const s of slots) batch.ids[ids + s.slot] = s.offset + rng.int(s.size);
    for (const f of state.features) {
      if (f.kind === "categorical") {
        // Its dense columns are the ones it derives from its value: frequency, then target.
        for (const c of encodedColumns(f).dense) batch.dense[dense + c] = rng.normal();
        continue;
      }
      if (f.kind === "multi_categorical") {
        const k = rng.int(f.maxValues + 1);
        for (let i = 0; i < f.maxValues; i++) {
          if (i >= k) batch.ids[ids + f.slot + i] = f.offset + MISSING_ID;
          batch.dense[dense + f.denseOffset + i] = i < k ? 1 / k : 0;
        }
        if (k === 0) batch.dense[dense + f.denseOffset] = 1;
        continue;
      }
      const width = f.kind === "vector" ? f.dim : 1;
      const clip = f.kind === "numeric" ? f.clip : Number.POSITIVE_INFINITY;
      if (rng.uniform() < 0.1) batch.dense[dense + f.denseOffset + width] = 1;
      else
        for (let i = 0; i < width; i++)
          batch.dense[dense + f.denseOffset + i] = Math.max(-clip, Math.min(clip, rng.normal()));
    }
  }
  return batch;
}

/**
 * A probe batch shaped like one rerank request: every row carries row 0's user and context
 * features (as `encodeRequest` writes them), item features vary by row.
 */
export function requestProbeBatch(state: EncoderState, rows: number, seed = 1): EncodedBatch {
  const batch = probeBatch(state, rows, seed);
  const shared = state.features.filter((f) => f.side !== "item").map(encodedColumns);
  for (let r = 1; r < rows; r++) {
    for (const { dense, ids } of shared) {
      for (const c of dense) batch.dense[r * state.denseSize + c] = batch.dense[c]!;
      for (const s of ids) batch.ids[r * state.idSlots + s] = batch.ids[s]!;
    }
  }
  return batch;
}
