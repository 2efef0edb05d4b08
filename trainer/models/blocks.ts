/**
 * Building blocks shared by every architecture, each written twice side by side: once in
 * TensorFlow.js for training and once as ONNX nodes for export. Keeping the twins together is
 * what keeps the exported graph equal to the trained network.
 */
import * as tf from "@tensorflow/tfjs";
import type { GraphBuilder } from "../core/onnx-graph.ts";
import type { HeadSpec, Params, Weights } from "./types.ts";

export type Activation = "relu" | "linear";

/** What a forward pass reads: the trained variables, or tensors standing in for some of them. */
export type Tensors = Readonly<Record<string, tf.Tensor>>;

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

/**
 * A softmax gate over `experts`, started at zero: every input mixes the experts evenly until
 * training moves it, so each expert learns from every task's loss from the first step. A random
 * start routes each task to a few experts at once; on the 1980 census (Fertility), an MMoE
 * started so stayed at the features' separate effects in one seed of eight (test AUC 0.581
 * against 0.592: it never learnt the two children's sexes together), and every seed learnt it
 * from an even start, with MovieLens, nmes and Lending Club level. PLE keeps random gates: its
 * task experts already give each task a path of its own, it learnt Fertility from every start
 * tried, and an even start cost it 0.0007 on MovieLens.
 */
export function initGate(params: Params, name: string, inDim: number, experts: number): void {
  params[`${name}/kernel`] = tf.variable(tf.zeros([inDim, experts]), true, `${name}/kernel`);
  params[`${name}/bias`] = tf.variable(tf.zeros([experts]), true, `${name}/bias`);
}

export function dense(params: Tensors, name: string, x: tf.Tensor2D, activation: Activation): tf.Tensor2D {
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
  return activation === "relu" ? reluOnnx(g, y) : y;
}

/**
 * ReLU written as Max(y, 0). onnxruntime-web's Relu kernel (and the ReLU fused into Gemm) ran
 * up to ~10x slower than Max on the same [200, 128] tensors (profiled: 134-165 us against
 * 11 us), so whole graphs ran faster with Max: at 200 candidates, reference MMoE, ort-web
 * p50 float32 x0.76, factorised float32 x0.69, factorised int8 x0.60, plain int8 x0.97.
 * Native onnxruntime loses the Gemm fusion: x1.01-1.05 there. The edge is what we serve.
 */
export function reluOnnx(g: GraphBuilder, y: string): string {
  const zero = constantOnce(g, "zero", () => g.initializer("zero", [], new Float32Array([0])));
  return g.node("Max", [y, zero], {}, "relu");
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

export function mlp(params: Tensors, name: string, x: tf.Tensor2D, layers: number): tf.Tensor2D {
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

export function tower(params: Tensors, name: string, x: tf.Tensor2D, layers: number): tf.Tensor2D {
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

// ---- Head dependencies (esmm, cross-attention) ---------------------------------------------

/** Heads with each one after the head it is `given` (a parent before its children). */
export function givenOrder(heads: readonly HeadSpec[]): HeadSpec[] {
  const byName = new Map(heads.map((h) => [h.name, h]));
  const ordered: HeadSpec[] = [];
  const visiting = new Set<string>();
  const visit = (head: HeadSpec): void => {
    if (ordered.includes(head)) return;
    if (visiting.has(head.name)) throw new Error(`heads: "given" forms a cycle through "${head.name}"`);
    visiting.add(head.name);
    if (head.given !== undefined) {
      const parent = byName.get(head.given);
      if (!parent) throw new Error(`heads: "${head.name}" is given "${head.given}", which is not a head`);
      visit(parent);
    }
    ordered.push(head);
  };
  heads.forEach(visit);
  return ordered;
}

// ---- Mixtures of experts (mmoe, ple) --------------------------------------------------------

/** `count` expert MLPs `${name}_0`, `${name}_1`, ... on inputs of width inDim; returns their width d. */
export function initExperts(
  params: Params,
  name: string,
  inDim: number,
  count: number,
  sizes: readonly number[],
  seed: number,
): number {
  if (count < 1 || sizes.length === 0) throw new Error(`${name}: needs at least one expert of one layer`);
  let width = inDim;
  for (let e = 0; e < count; e++) width = initMlp(params, `${name}_${e}`, inDim, sizes, seed + 10 * e);
  return width;
}

/** Number of experts `${name}_0`, `${name}_1`, ... in a parameter set. */
export function countExperts(params: Readonly<Record<string, unknown>>, name: string): number {
  let n = 0;
  while (`${name}_${n}/0/kernel` in params) n++;
  return n;
}

/**
 * Every expert of a group applied to x [n, in]: E outputs [n, d]. The tfjs side keeps them as a
 * list (the ONNX twin stacks them to [n, E, d]): on the cpu backend the gradients of stack and
 * concat cost more than the experts themselves (a PLE step ran 3x slower stacked).
 */
export function experts(params: Params, name: string, x: tf.Tensor2D): tf.Tensor2D[] {
  const outs: tf.Tensor2D[] = [];
  for (let e = 0; e < countExperts(params, name); e++) {
    outs.push(mlp(params, `${name}_${e}`, x, countLayers(params, `${name}_${e}`)));
  }
  return outs;
}

/** The ONNX twin of `experts`, stacked: [n, E, d]. */
export function expertsOnnx(g: GraphBuilder, weights: Weights, name: string, x: string): string {
  const outs: string[] = [];
  for (let e = 0; e < countExperts(weights, name); e++) {
    outs.push(mlpOnnx(g, weights, `${name}_${e}`, x, countLayers(weights, `${name}_${e}`)));
  }
  return stackOnnx(g, outs);
}

/** Softmax gate over E experts, a linear layer `${name}` [in, E] then softmax: [n, E]. */
export function gate(params: Params, name: string, x: tf.Tensor2D): tf.Tensor2D {
  return tf.softmax(dense(params, name, x, "linear"));
}

export function gateOnnx(g: GraphBuilder, weights: Weights, name: string, x: string): string {
  return g.node("Softmax", [denseOnnx(g, weights, name, x, "linear")], { axis: -1 });
}

/** Weighted sum Σ_e w_e · v_e: E values [n, d], weights [n, E] -> [n, d]. */
export function mixture(values: readonly tf.Tensor2D[], weights: tf.Tensor2D): tf.Tensor2D {
  const w = tf.split(weights, values.length, 1); // E × [n, 1]
  return tf.addN(values.map((v, e) => tf.mul(v, w[e]!))) as tf.Tensor2D;
}

/**
 * The ONNX twin of `mixture`: values stacked [n, E, d], weights [n, E] -> [n, d], as one batched
 * MatMul [n, 1, E] x [n, E, d]. Against Mul by [n, E, 1] + ReduceSum, the same outputs, and in
 * onnxruntime-web at 200 candidates whole graphs ran x0.92-0.95 (int8, default and reference
 * MMoE), x0.98 (float32).
 */
export function mixtureOnnx(g: GraphBuilder, values: string, weights: string): string {
  const w = g.node("Unsqueeze", [weights, axesOnnx(g, [1])]); // [n, 1, E]
  return g.node("Squeeze", [g.node("MatMul", [w, values]), axesOnnx(g, [1])]); // [n, 1, d] -> [n, d]
}

/**
 * Every task's gate and mixture over the same experts at once, the ONNX twin of
 * `mixture(values, gate(params, name, x))` for each name: the T gate kernels side by side as one
 * dense layer [in, T·E], Softmax over [n, T, E], one batched MatMul with the stacked experts
 * [n, E, d] -> [n, T, d], and a Gather per task -> [n, d]. One gate kernel of E = 4 columns was
 * a slow product in onnxruntime-web (~64 us against ~100 us for an expert layer 16x larger);
 * with the gates side by side the default MMoE's graphs ran at x0.90-0.97 (int8 and float32,
 * 200 candidates, old and new export interleaved). Float32 outputs are the same; in int8 the
 * joined kernel shares one scale when small (PER_TENSOR_BELOW), moving outputs by <= 1e-4.
 */
export function gatedMixturesOnnx(
  g: GraphBuilder,
  weights: Weights,
  names: readonly string[],
  x: string,
  values: string,
): string[] {
  if (names.length === 1) return [mixtureOnnx(g, values, gateOnnx(g, weights, names[0]!, x))];
  const kernels = names.map((n) => weights[`${n}/kernel`]);
  const biases = names.map((n) => weights[`${n}/bias`]);
  const [inWidth, experts] = kernels[0]?.shape ?? [];
  if (inWidth === undefined || experts === undefined)
    throw new Error(`export: the saved weights have no gate kernel "${names[0]}/kernel"`);
  const t = names.length;
  const kernel = new Float32Array(inWidth * t * experts);
  const bias = new Float32Array(t * experts);
  names.forEach((name, k) => {
    const w = kernels[k];
    const b = biases[k];
    if (!w || !b || w.shape[0] !== inWidth || w.shape[1] !== experts)
      throw new Error(`export: gate "${name}" is not [${inWidth}, ${experts}] like "${names[0]}"`);
    for (let r = 0; r < inWidth; r++)
      kernel.set(w.values.subarray(r * experts, (r + 1) * experts), r * t * experts + k * experts);
    bias.set(b.values, k * experts);
  });
  const side: Weights = {
    "gates/kernel": { shape: [inWidth, t * experts], values: kernel },
    "gates/bias": { shape: [t * experts], values: bias },
  };
  const logits = denseOnnx(g, side, "gates", x, "linear"); // [n, T·E]
  const shape = g.initializer("gates/shape", [3], BigInt64Array.from([0, t, experts], BigInt));
  const w = g.node("Softmax", [g.node("Reshape", [logits, shape])], { axis: -1 }); // [n, T, E]
  const mixed = g.node("MatMul", [w, values]); // [n, T, d]
  return names.map((_, k) => {
    const index = g.initializer(`gates/${k}`, [], BigInt64Array.from([BigInt(k)]));
    return g.node("Gather", [mixed, index], { axis: 1 }); // [n, d]
  });
}

// ---- Attention unit (cross-attention) -------------------------------------------------------

/** Query, key and value projections `${name}/query|key|value`, each [d, d]. */
export function initAttention(params: Params, name: string, dim: number, seed: number): void {
  ["query", "key", "value"].forEach((p, i) => {
    initDense(params, `${name}/${p}`, dim, dim, seed + i);
  });
}

/**
 * Single-head attention pooling k vectors [n, d] into one (AITM's attention unit): each vector
 * u scores <Q u, K u> / sqrt(d), softmax over the k vectors, output Σ_u w_u · V u: [n, d].
 */
export function attention(params: Params, name: string, vectors: readonly tf.Tensor2D[]): tf.Tensor2D {
  const d = params[`${name}/query/kernel`]!.shape[1]!;
  const project = (p: string, u: tf.Tensor2D) => dense(params, `${name}/${p}`, u, "linear"); // [n, d]
  const dots = vectors.map((u) => tf.sum(tf.mul(project("query", u), project("key", u)), 1, true)); // [n, 1]
  const w = tf.softmax(tf.mul(tf.concat(dots, 1), 1 / Math.sqrt(d)) as tf.Tensor2D); // [n, k]
  return mixture(
    vectors.map((u) => project("value", u)),
    w,
  );
}

export function attentionOnnx(
  g: GraphBuilder,
  weights: Weights,
  name: string,
  vectors: readonly string[],
): string {
  const d = weights[`${name}/query/kernel`]!.shape[1]!;
  const u = stackOnnx(g, vectors); // [n, k, d]; MatMul applies [d, d] to every vector, no reshape needed
  const project = (p: string): string => denseOnnx(g, weights, `${name}/${p}`, u, "linear"); // [n, k, d]
  const dot = g.node("ReduceSum", [g.node("Mul", [project("query"), project("key")]), axesOnnx(g, [2])], {
    keepdims: 0,
  }); // [n, k]
  const scale = g.initializer(`${name}/scale`, [], new Float32Array([1 / Math.sqrt(d)]));
  const w = g.node("Softmax", [g.node("Mul", [dot, scale])], { axis: -1 }); // [n, k]
  return mixtureOnnx(g, project("value"), w);
}

// ---- ONNX helpers ----------------------------------------------------------------------------

/** k values [n, d] -> [n, k, d] (ONNX has no Stack: Unsqueeze each, then Concat). */
export function stackOnnx(g: GraphBuilder, values: readonly string[]): string {
  const one = axesOnnx(g, [1]);
  return g.node(
    "Concat",
    values.map((v) => g.node("Unsqueeze", [v, one])),
    { axis: 1 },
  );
}

const constants = new WeakMap<GraphBuilder, Map<string, string>>();

/** The constant `key` of graph `g`, added by `make` the first time it is asked for. */
function constantOnce(g: GraphBuilder, key: string, make: () => string): string {
  let cache = constants.get(g);
  if (!cache) {
    cache = new Map();
    constants.set(g, cache);
  }
  let name = cache.get(key);
  if (name === undefined) {
    name = make();
    cache.set(key, name);
  }
  return name;
}

/** An int64 axes tensor (the second input of Unsqueeze, Squeeze, ReduceSum from opset 13), one per graph. */
export function axesOnnx(g: GraphBuilder, axes: readonly number[]): string {
  const key = `axes_${axes.join("_")}`;
  return constantOnce(g, key, () => g.initializer(key, [axes.length], BigInt64Array.from(axes, BigInt)));
}
