/** Per-head losses on logits, and their weighted total L = Σ w_t · L_t. */
import * as tf from "@tensorflow/tfjs";
import type { HeadSpec } from "../models/types.ts";

/** Binary cross-entropy from logits, stable for large |z|: max(z,0) - z·y + log(1 + e^-|z|). */
export function binaryCrossEntropy(logits: tf.Tensor2D, labels: tf.Tensor2D): tf.Scalar {
  const z = logits;
  return tf.mean(tf.add(tf.sub(tf.relu(z), tf.mul(z, labels)), tf.log1p(tf.exp(tf.neg(tf.abs(z))))));
}

export function meanSquared(values: tf.Tensor2D, labels: tf.Tensor2D): tf.Scalar {
  return tf.mean(tf.square(tf.sub(values, labels)));
}

export function headLoss(head: HeadSpec, logits: tf.Tensor2D, labels: tf.Tensor2D): tf.Scalar {
  return head.type === "binary" ? binaryCrossEntropy(logits, labels) : meanSquared(logits, labels);
}

export function totalLoss(
  heads: readonly HeadSpec[],
  logits: Record<string, tf.Tensor2D>,
  labels: Record<string, tf.Tensor2D>,
  weights: Readonly<Record<string, number>>,
): tf.Scalar {
  let total: tf.Scalar = tf.scalar(0);
  for (const head of heads) {
    const w = weights[head.name] ?? 1;
    if (w === 0) continue;
    total = tf.add(total, tf.mul(w, headLoss(head, logits[head.name]!, labels[head.name]!)));
  }
  return total;
}
