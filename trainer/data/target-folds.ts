/**
 * Out-of-fold target columns for the training rows. The encoder's target columns
 * (shared/encoder/state.ts, TargetColumns) hold each value's positive rate over all training
 * rows; a training row reading that rate would read its own label in it, and a network learns to
 * trust the column far more than it deserves on rows it has never seen (on a value seen twice,
 * the rate is half the row's own label). So each training row is dealt into one of TARGET_FOLDS
 * folds and reads the rate computed without its fold, shrunk the same way. Validation rows, and
 * every row the model scores later, read the encoder's rates: early stopping sees what serving
 * will.
 *
 * Rows of one group (spec.group: a request, a session) share a fold: the other rows of a list
 * carry the same visitor's mood at the same moment, which serving never knows.
 */
import type { EncodedBatch } from "../../shared/encoder/encode.ts";
import type { CategoricalState, EncoderState } from "../../shared/encoder/state.ts";
import { mix32 } from "./split.ts";

export const TARGET_FOLDS = 5;

/**
 * Each row's fold of `k`: by its group's hash when there are groups, else by its position. A run
 * that averages fold networks (../train/fold-average.ts) validates each on one of these folds.
 */
export function targetFolds(
  rows: number,
  groups: Uint32Array | null,
  seed: number,
  k = TARGET_FOLDS,
): Uint8Array {
  if (!Number.isInteger(k) || k < 2 || k > 255)
    throw new RangeError(`folds: expected an integer in [2, 255], got ${k}`);
  const folds = new Uint8Array(rows);
  const salt = Math.imul(seed, 0x9e3779b1);
  for (let r = 0; r < rows; r++) folds[r] = mix32((groups ? groups[r]! : r) ^ salt) % k;
  return folds;
}

/**
 * Rewrites the target columns of `part` (the training rows the encoder was fitted on) with
 * out-of-fold rates. `labels` by task name (NaN where missing), `groups` the group hash per row
 * or null, `seed` deals rows to `k` folds.
 */
export function writeOutOfFoldTargets(
  encoder: EncoderState,
  part: EncodedBatch,
  labels: Readonly<Record<string, Float32Array>>,
  groups: Uint32Array | null,
  seed: number,
  k = TARGET_FOLDS,
): void {
  const features = encoder.features.filter(
    (f): f is CategoricalState & Required<Pick<CategoricalState, "target">> =>
      f.kind === "categorical" && f.target !== undefined,
  );
  if (features.length === 0) return;
  const folds = targetFolds(part.rows, groups, seed, k);
  const { denseSize, idSlots } = encoder;
  for (const f of features) {
    const { smoothing: m } = f.target;
    f.target.tasks.forEach(({ task, prior, mean, std }, t) => {
      const y = labels[task]!;
      // [fold * size + id]: labelled rows and positives of each fold.
      const n = new Float64Array(k * f.size);
      const s = new Float64Array(k * f.size);
      const totalN = new Float64Array(f.size);
      const totalS = new Float64Array(f.size);
      for (let r = 0; r < part.rows; r++) {
        const label = y[r]!;
        if (Number.isNaN(label)) continue;
        const id = part.ids[r * idSlots + f.slot]! - f.offset;
        const at = folds[r]! * f.size + id;
        n[at]! += 1;
        s[at]! += label;
        totalN[id]! += 1;
        totalS[id]! += label;
      }
      const column = f.target.denseOffset + t;
      for (let r = 0; r < part.rows; r++) {
        const id = part.ids[r * idSlots + f.slot]! - f.offset;
        const at = folds[r]! * f.size + id;
        const rate = (totalS[id]! - s[at]! + m * prior) / (totalN[id]! - n[at]! + m);
        part.dense[r * denseSize + column] = (rate - mean) / std;
      }
    });
  }
}
