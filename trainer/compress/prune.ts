/**
 * Magnitude pruning (Han et al., NeurIPS 2015, "Learning both Weights and Connections for
 * Efficient Neural Networks"): in each dense kernel the smallest-|w| fraction of the weights is
 * set to zero and kept there while the network fine-tunes (./fine-tune.ts re-applies the mask
 * after every optimiser step). Layer by layer, not one global threshold: a global one empties
 * the small layers whose weights run larger (gates, logits) before it touches the wide ones.
 *
 * The exported graph stays dense (onnxruntime-web has no sparse kernels): the zeros pay off in
 * size only once the int8 file is compressed (gzip, brotli on the wire), where runs of zero bytes
 * cost almost nothing.
 */
import * as tf from "@tensorflow/tfjs";
import { isDenseKernel } from "../export/quantize.ts";
import type { Params, Weights } from "../models/types.ts";

/** 1 keeps a weight, 0 prunes it; one mask per pruned parameter, same length as its values. */
export type Masks = Record<string, Uint8Array>;

export interface PruneOptions {
  /** Fraction of each pruned tensor set to zero, in [0, 1). */
  sparsity: number;
  /** Also prune the embedding table (row by row it is what ids read; off by default). */
  embedding?: boolean;
}

/** Which parameters pruning touches: every dense kernel, and the table when asked. */
export function prunable(name: string, shape: readonly number[], options: PruneOptions): boolean {
  if (name === "embedding") return options.embedding === true;
  return isDenseKernel(name, shape);
}

/**
 * Masks zeroing exactly floor(sparsity · size) weights of each prunable parameter, the smallest
 * |w| first (ties broken by index, so the masks are reproducible).
 */
export function magnitudeMasks(weights: Weights, options: PruneOptions): Masks {
  const { sparsity } = options;
  if (!(sparsity >= 0 && sparsity < 1))
    throw new Error(`--prune: sparsity must be in [0, 1), got ${sparsity}`);
  const masks: Masks = {};
  for (const [name, w] of Object.entries(weights)) {
    if (!prunable(name, w.shape, options)) continue;
    const n = w.values.length;
    const cut = Math.floor(sparsity * n);
    const order = Uint32Array.from({ length: n }, (_, i) => i);
    const abs = Float32Array.from(w.values, Math.abs);
    order.sort((a, b) => abs[a]! - abs[b]! || a - b);
    const mask = new Uint8Array(n).fill(1);
    for (let i = 0; i < cut; i++) mask[order[i]!] = 0;
    masks[name] = mask;
  }
  if (Object.keys(masks).length === 0) throw new Error("--prune: the model has no dense kernel to prune");
  return masks;
}

/** Saved weights with the masks applied (a copy; parameters without a mask are shared). */
export function maskWeights(weights: Weights, masks: Masks): Weights {
  return Object.fromEntries(
    Object.entries(weights).map(([name, w]) => {
      const mask = masks[name];
      if (!mask) return [name, w];
      return [name, { shape: w.shape, values: w.values.map((v, i) => (mask[i] ? v : 0)) }];
    }),
  );
}

/** tfjs masks, built once, for re-applying after every optimiser step. */
export function maskTensors(masks: Masks, params: Params): Record<string, tf.Tensor> {
  return Object.fromEntries(
    Object.entries(masks).map(([name, mask]) => {
      const p = params[name];
      if (!p) throw new Error(`--prune: the network has no parameter "${name}"`);
      return [name, tf.tensor(Float32Array.from(mask), p.shape)];
    }),
  );
}

/** Zeroes the pruned weights of `params` in place. */
export function applyMasks(params: Params, masks: Record<string, tf.Tensor>): void {
  tf.tidy(() => {
    for (const [name, mask] of Object.entries(masks)) params[name]!.assign(tf.mul(params[name]!, mask));
  });
}

/** Fraction of exact zeros over the prunable parameters (what pruning achieved, as saved). */
export function sparsityOf(weights: Weights, options: Omit<PruneOptions, "sparsity"> = {}): number {
  let zeros = 0;
  let total = 0;
  for (const [name, w] of Object.entries(weights)) {
    if (!prunable(name, w.shape, { sparsity: 0, ...options })) continue;
    total += w.values.length;
    for (const v of w.values) if (v === 0) zeros++;
  }
  return total === 0 ? 0 : zeros / total;
}
