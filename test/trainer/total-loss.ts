/**
 * The tests' reference loss: Σ w·L over the heads with static weights (default 1), a head with
 * weight 0 not even computed; what training minimises with static task weighting.
 */
import type * as tf from "@tensorflow/tfjs";
import type { HeadSpec } from "../../trainer/models/types.ts";
import { headLosses, weightedSum } from "../../trainer/train/loss.ts";

export function totalLoss(
  heads: readonly HeadSpec[],
  logits: Record<string, tf.Tensor2D>,
  labels: Record<string, tf.Tensor2D>,
  weights: Readonly<Record<string, number>>,
  rowWeights: Readonly<Record<string, tf.Tensor2D>> = {},
): tf.Scalar {
  const weightOf = (name: string) => weights[name] ?? 1;
  const active = heads.filter((h) => weightOf(h.name) !== 0);
  return weightedSum(active, headLosses(active, logits, labels, rowWeights), weightOf);
}
