/**
 * DCN-v2's cross network (Wang et al., WWW 2021, "DCN V2: Improved Deep & Cross Network"), in
 * its low-rank form, applied to the input layer x0 [n, d] before any architecture reads it:
 *
 *   x_{l+1} = x0 ⊙ (x_l · V_l · U_l + b_l) + x_l      V_l [d, r], U_l [r, d], b_l [d]
 *
 * Each layer multiplies the input by a learned linear map of itself, so products of features
 * (the interactions a tree finds with two splits) are in x before the first dense layer. The
 * width stays d, so every architecture takes the output unchanged. U starts at zero, so a fresh
 * cross network is the identity. Like blocks.ts, the tfjs forward and its ONNX twin sit side by
 * side; the number of layers is read back from the parameter names. An architecture that shares
 * nothing between tasks (single) builds one cross network per task, its names under `prefix`.
 */
import * as tf from "@tensorflow/tfjs";
import type { GraphBuilder } from "../core/onnx-graph.ts";
import { constant, countLayers, initTower, type Tensors, tower, towerOnnx } from "./blocks.ts";
import type { Params, Weights } from "./types.ts";

export function initCross(
  params: Params,
  width: number,
  layers: number,
  rank: number,
  seed: number,
  prefix = "",
): void {
  if (layers > 0 && !(Number.isInteger(rank) && rank > 0))
    throw new Error(`--cross-rank: expected a positive integer, got ${rank}`);
  for (let l = 0; l < layers; l++) {
    const name = `${prefix}cross_${l}`;
    params[`${name}/down/kernel`] = tf.variable(
      tf.randomNormal([width, rank], 0, 1 / Math.sqrt(width), "float32", seed + l),
      true,
      `${name}/down/kernel`,
    );
    params[`${name}/up/kernel`] = tf.variable(tf.zeros([rank, width]), true, `${name}/up/kernel`);
    params[`${name}/bias`] = tf.variable(tf.zeros([width]), true, `${name}/bias`);
  }
}

/** Number of cross layers `${prefix}cross_0`, `${prefix}cross_1`, ... in a parameter set. */
export function countCrossLayers(params: Readonly<Record<string, unknown>>, prefix = ""): number {
  let n = 0;
  while (`${prefix}cross_${n}/up/kernel` in params) n++;
  return n;
}

/** Whether a parameter set has cross layers in the stacked layout, shared or per task. */
export function hasStackedCross(params: Readonly<Record<string, unknown>>): boolean {
  return Object.keys(params).some((name) => {
    const match = /^(|.*\/)cross_0\/up\/kernel$/.exec(name);
    return match !== null && !isParallelCross(params, match[1]);
  });
}

/**
 * parallel layout: one small tower per head on x_L, `${prefix}cross_tower_<head>` (a ReLU layer
 * of `hidden` units, then a logit), its logit kernel at zero so a fresh one adds nothing.
 */
export function initCrossTowers(
  params: Params,
  width: number,
  heads: readonly string[],
  hidden: number,
  seed: number,
  prefix = "",
): void {
  heads.forEach((head, t) => {
    const name = `${prefix}cross_tower_${head}`;
    initTower(params, name, width, [hidden], seed + 10 * t);
    params[`${name}/logit/kernel`]!.assign(tf.zeros([hidden, 1]));
  });
}

/** Whether the cross layers under `prefix` are in the parallel layout (they have towers). */
export function isParallelCross(params: Readonly<Record<string, unknown>>, prefix = ""): boolean {
  return Object.keys(params).some((name) => name.startsWith(`${prefix}cross_tower_`));
}

/** parallel layout: each head's logit plus its cross tower's on x_L; a head without one is unchanged. */
export function addCrossLogits(
  params: Tensors,
  xL: tf.Tensor2D,
  logits: Record<string, tf.Tensor2D>,
  prefix = "",
): Record<string, tf.Tensor2D> {
  const out: Record<string, tf.Tensor2D> = {};
  for (const [head, logit] of Object.entries(logits)) {
    const name = `${prefix}cross_tower_${head}`;
    out[head] = params[`${name}/logit/kernel`]
      ? tf.add(logit, tower(params, name, xL, countLayers(params, name)))
      : logit;
  }
  return out;
}

export function addCrossLogitsOnnx(
  g: GraphBuilder,
  weights: Weights,
  xL: string,
  logits: Record<string, string>,
  prefix = "",
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [head, logit] of Object.entries(logits)) {
    const name = `${prefix}cross_tower_${head}`;
    out[head] = weights[`${name}/logit/kernel`]
      ? g.node("Add", [logit, towerOnnx(g, weights, name, xL, countLayers(weights, name))])
      : logit;
  }
  return out;
}

export function crossNetwork(params: Tensors, x0: tf.Tensor2D, prefix = ""): tf.Tensor2D {
  let x = x0;
  const layers = countCrossLayers(params, prefix);
  for (let l = 0; l < layers; l++) {
    const name = `${prefix}cross_${l}`;
    const low = tf.matMul(x, params[`${name}/down/kernel`] as tf.Tensor2D); // [n, r]
    const map = tf.add(tf.matMul(low, params[`${name}/up/kernel`] as tf.Tensor2D), params[`${name}/bias`]!);
    x = tf.add(tf.mul(x0, map), x) as tf.Tensor2D;
  }
  return x;
}

export function crossNetworkOnnx(g: GraphBuilder, weights: Weights, x0: string, prefix = ""): string {
  let x = x0;
  const layers = countCrossLayers(weights, prefix);
  for (let l = 0; l < layers; l++) {
    const name = `${prefix}cross_${l}`;
    const low = g.node("MatMul", [x, constant(g, weights, `${name}/down/kernel`)]);
    const map = g.node("Add", [
      g.node("MatMul", [low, constant(g, weights, `${name}/up/kernel`)]),
      constant(g, weights, `${name}/bias`),
    ]);
    x = g.node("Add", [g.node("Mul", [x0, map]), x]);
  }
  return x;
}
