/**
 * Per-head losses on logits, and their weighted total L = Σ w_t · L_t. A head's row weights
 * (`rowWeights`: 0 where the label is missing, 1/batch rows elsewhere; ./batch-gradients.ts
 * labelWeights) make its loss the sum over labelled rows divided by the batch's rows: each label
 * counts once, as in a fully labelled task.
 */
import * as tf from "@tensorflow/tfjs";
import type { HeadSpec } from "../models/types.ts";

/** The mean of per-row losses, or their sum weighted by `rowWeights` (0 or 1/rows each). */
function rowMean(perRow: tf.Tensor, rowWeights?: tf.Tensor2D): tf.Scalar {
  return rowWeights ? tf.sum(tf.mul(perRow, rowWeights)) : tf.mean(perRow);
}

/** Binary cross-entropy from logits, stable for large |z|: max(z,0) - z·y + log(1 + e^-|z|). */
export function binaryCrossEntropy(
  logits: tf.Tensor2D,
  labels: tf.Tensor2D,
  rowWeights?: tf.Tensor2D,
): tf.Scalar {
  const z = logits;
  return rowMean(
    tf.add(tf.sub(tf.relu(z), tf.mul(z, labels)), tf.log1p(tf.exp(tf.neg(tf.abs(z))))),
    rowWeights,
  );
}

export function meanSquared(values: tf.Tensor2D, labels: tf.Tensor2D, rowWeights?: tf.Tensor2D): tf.Scalar {
  return rowMean(tf.square(tf.sub(values, labels)), rowWeights);
}

/** Huber loss: ½r² for |r| ≤ δ, δ(|r| − ½δ) beyond, so outlying labels pull linearly, not quadratically. */
export function huber(
  values: tf.Tensor2D,
  labels: tf.Tensor2D,
  delta: number,
  rowWeights?: tf.Tensor2D,
): tf.Scalar {
  if (!rowWeights) return tf.losses.huberLoss(labels, values, undefined, delta) as tf.Scalar;
  // Not huberLoss's own weights: its mean over non-zero weights is 0/0 in a batch without labels.
  return rowMean(tf.losses.huberLoss(labels, values, undefined, delta, tf.Reduction.NONE), rowWeights);
}

export function headLoss(
  head: HeadSpec,
  logits: tf.Tensor2D,
  labels: tf.Tensor2D,
  rowWeights?: tf.Tensor2D,
): tf.Scalar {
  if (head.type === "binary") return binaryCrossEntropy(logits, labels, rowWeights);
  // A standardised head compares standardised labels; Huber's delta, in label units, scales too.
  const s = head.scale;
  const y = s ? tf.div<tf.Tensor2D>(tf.sub(labels, s.mean), s.std) : labels;
  return head.loss === "huber"
    ? huber(logits, y, (head.delta ?? 1) / (s?.std ?? 1), rowWeights)
    : meanSquared(logits, y, rowWeights);
}

/** Each head's loss on its own labels (weighted by row where `rowWeights` has the head). */
export function headLosses(
  heads: readonly HeadSpec[],
  logits: Record<string, tf.Tensor2D>,
  labels: Record<string, tf.Tensor2D>,
  rowWeights: Readonly<Record<string, tf.Tensor2D>> = {},
): Record<string, tf.Scalar> {
  return Object.fromEntries(
    heads.map((h) => [h.name, headLoss(h, logits[h.name]!, labels[h.name]!, rowWeights[h.name])]),
  );
}

/** Σ w·L over `heads` (the caller leaves out heads whose weight is 0). */
export function weightedSum(
  heads: readonly HeadSpec[],
  losses: Readonly<Record<string, tf.Scalar>>,
  weightOf: (name: string) => number,
): tf.Scalar {
  let total: tf.Scalar = tf.scalar(0);
  for (const h of heads) total = tf.add(total, tf.mul(weightOf(h.name), losses[h.name]!));
  return total;
}

/**
 * Listwise softmax cross-entropy within groups (ListNet-style with one-hot-ish targets):
 * for each group, −Σ yᵢ·log softmax(z)ᵢ over its rows, summed over groups and divided by the
 * number of positive labels, so a batch's value does not depend on how many groups it holds.
 * `segments` gives each row's group as 0..groups-1. Log-softmax is shift-invariant, so one
 * batch-wide max keeps exp() in range; the tiny floor only matters if a whole group sits ~80
 * logits below the batch maximum. Rows without a label (row weight 0) take no part in their
 * group's softmax: an unlabelled row is neither a positive nor a known negative.
 */
export function listwiseLoss(
  logits: tf.Tensor2D,
  labels: tf.Tensor2D,
  segments: tf.Tensor1D,
  groups: number,
  rowWeights?: tf.Tensor2D,
): tf.Scalar {
  const z = tf.reshape(logits, [-1]);
  const y = tf.reshape(labels, [-1]);
  const shifted = tf.sub(z, tf.max(z));
  const exps = rowWeights
    ? tf.mul(tf.exp(shifted), tf.cast(tf.greater(tf.reshape(rowWeights, [-1]), 0), "float32"))
    : tf.exp(shifted);
  const sums = tf.unsortedSegmentSum(exps, segments, groups);
  const logp = tf.sub(shifted, tf.log(tf.add(tf.gather(sums, segments), 1e-30)));
  return tf.div(tf.neg(tf.sum(tf.mul(y, logp))), tf.maximum(tf.sum(y), 1)) as tf.Scalar;
}
