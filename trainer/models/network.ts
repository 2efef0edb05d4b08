/**
 * The whole network: the input layer (numeric inputs + one shared embedding table for every
 * categorical slot) feeding an architecture, then per-head output functions.
 *
 *   dense [n, D], ids [n, C] -> gather(embedding) [n, C, E] -> reshape [n, C*E]
 *   x = concat(dense, embedded) [n, D + C*E] -> architecture -> logits [n, 1] per head
 */
import * as tf from "@tensorflow/tfjs";
import { architecture } from "./registry.ts";
import type { ArchOptions, HeadSpec, ModelShape, Params, Weights } from "./types.ts";

export interface NetworkConfig {
  arch: string;
  options: ArchOptions;
  embeddingDim: number;
  denseSize: number;
  idSlots: number;
  vocabSize: number;
  heads: (HeadSpec & { transform?: "none" | "log1p" })[];
}

export function modelShape(config: NetworkConfig): ModelShape {
  return { inputWidth: config.denseSize + config.idSlots * config.embeddingDim, heads: config.heads };
}

export function initNetwork(config: NetworkConfig, seed: number): Params {
  const params = architecture(config.arch).init(modelShape(config), config.options, seed);
  if (config.idSlots > 0) {
    params.embedding = tf.variable(
      tf.randomUniform([config.vocabSize, config.embeddingDim], -0.05, 0.05, "float32", seed + 7),
      true,
      "embedding",
    );
  }
  return params;
}

export interface NetworkInputs {
  dense: tf.Tensor2D;
  ids: tf.Tensor2D;
}

export function networkLogits(
  params: Params,
  config: NetworkConfig,
  inputs: NetworkInputs,
): Record<string, tf.Tensor2D> {
  const parts: tf.Tensor2D[] = [];
  if (config.denseSize > 0) parts.push(inputs.dense);
  if (config.idSlots > 0) {
    const n = inputs.ids.shape[0];
    parts.push(
      tf.reshape(tf.gather(params.embedding!, inputs.ids), [n, config.idSlots * config.embeddingDim]),
    );
  }
  const x = parts.length === 1 ? parts[0]! : tf.concat(parts, 1);
  return architecture(config.arch).forward(params, x, modelShape(config));
}

/** Logit -> served value: probability for binary heads, label units for regression heads. */
export function headOutput(head: NetworkConfig["heads"][number], logit: tf.Tensor2D): tf.Tensor2D {
  if (head.type === "binary") return tf.sigmoid(logit);
  return head.transform === "log1p" ? tf.sub(tf.exp(logit), 1) : logit;
}

/** tfjs parameters from saved weights (to evaluate a saved model or compare it with its export). */
export function paramsFromWeights(weights: Weights): Params {
  return Object.fromEntries(
    Object.entries(weights).map(([name, w]) => [
      name,
      tf.variable(tf.tensor(w.values, w.shape), false, name),
    ]),
  );
}
