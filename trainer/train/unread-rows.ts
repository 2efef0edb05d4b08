/**
 * Embedding rows that training never read keep their random initialisation: the missing row of
 * a feature every training row had, the out-of-vocabulary row of a feature whose values all
 * passed minCount (every user of a log where each rated twenty films), a hash bucket no value
 * fell in. Serving reads them as soon as a request sends such a value (a new user, a client
 * that leaves a field out), and a random row is a random category: the score moves by chance.
 *
 * After training, each such row is set to the mean of its feature's rows, weighted by how often
 * training read each: the embedding of the average training row's value. It is what a missing
 * number already reads (0, its standardised mean), and it leaves every row a training row reads,
 * and so every training and validation score that reads only those, unchanged.
 */
import { type EncoderState, embeddingPools, idSlotLayout } from "../../shared/encoder/state.ts";

/** Each feature's block of the table (offset → rows), once: a bag's slots share one. */
function blocks(encoder: EncoderState): Map<number, number> {
  return new Map(idSlotLayout(encoder).map((s) => [s.offset, s.size]));
}

/**
 * How often the rows read each embedding row: ids [rows, idSlots] hold table rows. A bag's
 * padding slots (pooling weight 0) read the missing row without using it, so they do not count.
 */
export function rowReads(
  encoder: EncoderState,
  part: { rows: number; ids: Int32Array; dense: Float32Array },
): Float64Array {
  const reads = new Float64Array(encoder.vocabSize);
  const { idSlots, denseSize } = encoder;
  // Slot → the dense column holding its pooling weight (bags), else -1.
  const weightColumn = new Int32Array(idSlots).fill(-1);
  for (const pool of embeddingPools(encoder))
    for (let i = 0; i < pool.count; i++) weightColumn[pool.slot + i] = pool.weights + i;
  for (let r = 0; r < part.rows; r++) {
    const base = r * idSlots;
    for (let s = 0; s < idSlots; s++) {
      const column = weightColumn[s]!;
      if (column >= 0 && part.dense[r * denseSize + column] === 0) continue;
      reads[part.ids[base + s]!]!++;
    }
  }
  return reads;
}

/**
 * Sets every row with no reads (and not `kept`: rows an earlier model's training shaped, carried
 * over by a warm start) to its block's read-weighted mean row. Returns how many rows it set.
 */
export function neutraliseUnreadRows(
  table: Float32Array,
  dim: number,
  encoder: EncoderState,
  reads: Float64Array,
  kept?: Uint8Array,
): number {
  let set = 0;
  const mean = new Float64Array(dim);
  for (const [offset, size] of blocks(encoder)) {
    mean.fill(0);
    let total = 0;
    for (let row = offset; row < offset + size; row++) {
      const n = reads[row]!;
      if (n === 0) continue;
      total += n;
      for (let j = 0; j < dim; j++) mean[j]! += n * table[row * dim + j]!;
    }
    if (total === 0) continue;
    for (let j = 0; j < dim; j++) mean[j]! /= total;
    for (let row = offset; row < offset + size; row++) {
      if (reads[row]! > 0 || kept?.[row]) continue;
      for (let j = 0; j < dim; j++) table[row * dim + j] = mean[j]!;
      set++;
    }
  }
  return set;
}
