/** Synthetic encoded inputs on which exported graphs are compared with each other. */
import type { EncodedBatch } from "../../shared/encoder/encode.ts";
import { type EncoderState, idSlotLayout } from "../../shared/encoder/state.ts";
import { createRng } from "../simulate/rng.ts";

/** Seeded random inputs: numeric features ~N(0, 1) clipped (10% missing), ids uniform over each feature's rows. */
export function probeBatch(state: EncoderState, rows: number, seed = 1): EncodedBatch {
  const rng = createRng(seed);
  const batch: EncodedBatch = {
    rows,
    dense: new Float32Array(rows * state.denseSize),
    ids: new Int32Array(rows * state.idSlots),
  };
  const slots = idSlotLayout(state);
  for (let r = 0; r < rows; r++) {
    for (const s of slots) batch.ids[r * state.idSlots + s.slot] = s.offset + rng.int(s.size);
    for (const f of state.features) {
      if (f.kind === "categorical") continue;
      if (rng.uniform() < 0.1) {
        batch.dense[r * state.denseSize + f.denseOffset + 1] = 1;
      } else {
        batch.dense[r * state.denseSize + f.denseOffset] = Math.max(-f.clip, Math.min(f.clip, rng.normal()));
      }
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
  const shared = state.features.filter((f) => f.side !== "item");
  for (let r = 1; r < rows; r++) {
    for (const f of shared) {
      if (f.kind === "categorical") batch.ids[r * state.idSlots + f.slot] = batch.ids[f.slot]!;
      else {
        for (const c of [f.denseOffset, f.denseOffset + 1])
          batch.dense[r * state.denseSize + c] = batch.dense[c]!;
        if (f.buckets) batch.ids[r * state.idSlots + f.buckets.slot] = batch.ids[f.buckets.slot]!;
      }
    }
  }
  return batch;
}
