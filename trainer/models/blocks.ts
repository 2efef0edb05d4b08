/**
 * Building blocks shared by every architecture, each written twice side by side: once in
 * TensorFlow.js for training and once as ONNX nodes for export. Keeping the twins together is
 * what keeps the exported graph equal to the trained network.
 */
import * as tf from "@tensorflow/tfjs";
import type { GraphBuilder } from "../export/onnx-graph.ts";
import type { Params, Weights } from "./types.ts";

export type Activation = "relu" | "linear";

/** Glorot-uniform kernel [inDim, outDim] and zero bias, named `${name}/kernel`, `${name}/bias`. */
export function initDense(params: Params, name: string, inDim: number, outDim: number, seed: number): void {
  const limit = Math.sqrt(6 / (inDim + outDim));
  params[`${name}/kernel`] = tf.variable(
    tf.randomUniform([inDim, outDim], -limit, limit, "float32", seed),
    true,
    `${name}/kernel`,
  );
  params[`${name}/bias`] = tf.variable(tf.zeros([outDim]), true, `${name}/bias`);
}

export function dense(params: Params, name: string, x: tf.Tensor2D, activation: Activation): tf.Tensor2D {
  const y = tf.add(
    tf.matMul(x, params[`${name}/kernel`] as tf.Tensor2D),
    params[`${name}/bias`]!,
  ) as tf.Tensor2D;
  return activation === "relu" ? tf.relu(y) : y;
}

export function denseOnnx(
  g: GraphBuilder,
  weights: Weights,
  name: string,
  x: string,
  activation: Activation,
): string {
  const kernel = constant(g, weights, `${name}/kernel`);
  const bias = constant(g, weights, `${name}/bias`);
  const y = g.node("Add", [g.node("MatMul", [x, kernel]), bias]);
  return activation === "relu" ? g.node("Relu", [y]) : y;
}

/** A stack of ReLU layers `${name}/0`, `${name}/1`, ...; returns the output width. */
export function initMlp(
  params: Params,
  name: string,
  inDim: number,
  sizes: readonly number[],
  seed: number,
): number {
  let width = inDim;
  sizes.forEach((size, i) => {
    initDense(params, `${name}/${i}`, width, size, seed + i);
    width = size;
  });
  return width;
}

export function mlp(params: Params, name: string, x: tf.Tensor2D, layers: number): tf.Tensor2D {
  let h = x;
  for (let i = 0; i < layers; i++) h = dense(params, `${name}/${i}`, h, "relu");
  return h;
}

export function mlpOnnx(g: GraphBuilder, weights: Weights, name: string, x: string, layers: number): string {
  let h = x;
  for (let i = 0; i < layers; i++) h = denseOnnx(g, weights, `${name}/${i}`, h, "relu");
  return h;
}

/** A tower (ReLU MLP) ending in one logit: `${name}/0..k-1` then `${name}/logit`. */
export function initTower(
  params: Params,
  name: string,
  inDim: number,
  sizes: readonly number[],
  seed: number,
): void {
  const width = initMlp(params, name, inDim, sizes, seed);
  initDense(params, `${name}/logit`, width, 1, seed + sizes.length);
}

export function tower(params: Params, name: string, x: tf.Tensor2D, layers: number): tf.Tensor2D {
  return dense(params, `${name}/logit`, mlp(params, name, x, layers), "linear");
}

export function towerOnnx(
  g: GraphBuilder,
  weights: Weights,
  name: string,
  x: string,
  layers: number,
): string {
  return denseOnnx(g, weights, `${name}/logit`, mlpOnnx(g, weights, name, x, layers), "linear");
}

export function constant(g: GraphBuilder, weights: Weights, name: string): string {
  const w = weights[name];
  if (!w) throw new Error(`export: the saved weights have no parameter "${name}"`);
  return g.initializer(name, w.shape, w.values);
}

/** Number of hidden layers `${prefix}/0/kernel`, `${prefix}/1/kernel`, ... in a parameter set. */
export function countLayers(params: Readonly<Record<string, unknown>>, prefix: string): number {
  let n = 0;
  while (`${prefix}/${n}/kernel` in params) n++;
  return n;
}
