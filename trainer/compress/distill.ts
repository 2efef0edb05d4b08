/**
 * Knowledge distillation (Hinton et al., 2015, "Distilling the Knowledge in a Neural Network"):
 * a small student learns from a trained teacher's outputs as well as from the labels. Each head's
 * training target becomes
 *
 *   target = alpha · label + (1 - alpha) · teacher
 *
 * where `teacher` is the teacher's probability on binary heads (binary cross-entropy takes soft
 * targets as they are) and its raw output on regression heads (the label's transformed units,
 * what the squared loss compares). Validation keeps the true labels, so early stopping picks the
 * student that predicts the labels best, not the one that imitates the teacher best.
 */
import * as tf from "@tensorflow/tfjs";
import { headOutput, type NetworkConfig, networkLogits, transformedValue } from "../models/network.ts";
import type { Weights } from "../models/types.ts";
import type { LabelledBatch } from "../train/train-network.ts";
import { tensorParams } from "./fine-tune.ts";

/** Per head, the teacher's output in the units the training loss compares with the label. */
export function teacherTargets(
  config: NetworkConfig,
  weights: Weights,
  batch: LabelledBatch,
): Record<string, Float32Array> {
  const out: Record<string, Float32Array> = Object.fromEntries(
    config.heads.map((h) => [h.name, new Float32Array(batch.rows)]),
  );
  const params = tensorParams(weights);
  const chunk = 8192;
  try {
    for (let start = 0; start < batch.rows; start += chunk) {
      const end = Math.min(batch.rows, start + chunk);
      const values = tf.tidy(() => {
        const logits = networkLogits(params, config, {
          dense: tf.tensor2d(batch.dense.subarray(start * config.denseSize, end * config.denseSize), [
            end - start,
            config.denseSize,
          ]),
          ids: tf.tensor2d(
            batch.ids.subarray(start * config.idSlots, end * config.idSlots),
            [end - start, config.idSlots],
            "int32",
          ),
        });
        return config.heads.map((h) => {
          const z = logits[h.name]!;
          // Binary: the probability; regression: the value in transformed label units.
          return (h.type === "binary" ? headOutput(h, z) : transformedValue(h, z)).dataSync() as Float32Array;
        });
      });
      config.heads.forEach((h, i) => {
        out[h.name]!.set(values[i]!, start);
      });
    }
  } finally {
    tf.dispose(Object.values(params));
  }
  return out;
}

/** alpha · labels + (1 - alpha) · teacher, head by head; alpha = 1 is plain training. */
export function blendTargets(
  labels: Readonly<Record<string, Float32Array>>,
  teacher: Readonly<Record<string, Float32Array>>,
  alpha: number,
): Record<string, Float32Array> {
  if (!(alpha >= 0 && alpha <= 1)) throw new Error(`--alpha: expected a number in [0, 1], got ${alpha}`);
  return Object.fromEntries(
    Object.entries(labels).map(([task, y]) => {
      const t = teacher[task];
      if (!t) return [task, y];
      if (t.length !== y.length)
        throw new Error(`distill: head "${task}" has ${t.length} teacher outputs for ${y.length} labels`);
      // A row without the label (a masked task) learns from the teacher alone.
      return [task, y.map((v, i) => (Number.isNaN(v) ? t[i]! : alpha * v + (1 - alpha) * t[i]!))];
    }),
  );
}
