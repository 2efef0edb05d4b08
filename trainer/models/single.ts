/**
 * Single-task baseline: an independent network per task (no sharing), the reference every
 * multi-task architecture has to beat. Nothing is shared, embeddings included: the table holds
 * one copy of every embedding per task, and each task's first layer reads only its own copy
 * (its kernel rows for the other copies are held at zero), so no task's gradient reaches another
 * task's parameters. The shared input layer, exporter and factorised graph need no special case.
 * Cross layers (--cross) come one network per task for the same reason, each reading only its
 * task's columns (the rows of its down kernel for the other copies held at zero).
 *
 *   x [n, in] -> net_t/cross_l (cross layers) -> net_t (bottom MLP + tower MLP + logit) -> [n, 1] per task
 *   (parallel layout: net_t reads x, and net_t/cross_tower_<task> on the cross output adds its logit)
 */
import * as tf from "@tensorflow/tfjs";
import { countLayers, initTower, type Tensors, tower, towerOnnx } from "./blocks.ts";
import {
  addCrossLogits,
  addCrossLogitsOnnx,
  countCrossLayers,
  crossNetwork,
  crossNetworkOnnx,
  initCross,
  initCrossTowers,
  isParallelCross,
} from "./cross-network.ts";
import type { Architecture, ModelShape, Params, Weights } from "./types.ts";

export const single: Architecture = {
  name: "single",
  embeddingCopies: (heads) => heads.length,
  ownCross: true,
  init(shape, options, seed) {
    const params: Params = {};
    shape.heads.forEach((head, t) => {
      const name = `net_${head.name}`;
      initTower(params, name, shape.inputWidth, [...options.bottom, ...options.tower], seed + 100 * t);
      initCross(
        params,
        shape.inputWidth,
        options.cross,
        options.crossRank,
        seed + 100 * t + 5000,
        `${name}/`,
      );
      if (options.cross > 0 && options.crossLayout === "parallel")
        initCrossTowers(
          params,
          shape.inputWidth,
          [head.name],
          options.crossRank,
          seed + 100 * t + 6000,
          `${name}/`,
        );
      if (shape.columnOwner) {
        for (const k of inputKernels(params, name)) {
          const kernel = params[k]!;
          tf.tidy(() => kernel.assign(tf.mul(kernel, ownMask(shape, t))));
        }
      }
    });
    return params;
  },
  forward(params, x, shape) {
    const out: Record<string, tf.Tensor2D> = {};
    shape.heads.forEach((head, t) => {
      const name = `net_${head.name}`;
      const own: Tensors = shape.columnOwner
        ? {
            ...params,
            ...Object.fromEntries(
              inputKernels(params, name).map((k) => [k, tf.mul(params[k]!, ownMask(shape, t))]),
            ),
          }
        : params;
      const prefix = `${name}/`;
      // Stacked: the net reads x_L. Parallel: it reads x, and its cross tower adds a logit on
      // x_L (a head without a tower keeps its logit; x_L is x without cross layers).
      const xL = crossNetwork(own, x, prefix);
      const logit = tower(own, name, isParallelCross(params, prefix) ? x : xL, countLayers(params, name));
      Object.assign(out, addCrossLogits(own, xL, { [head.name]: logit }, prefix));
    });
    return out;
  },
  toOnnx(g, weights, x, shape) {
    const out: Record<string, string> = {};
    shape.heads.forEach((head, t) => {
      const name = `net_${head.name}`;
      const own = shape.columnOwner
        ? inputKernels(weights, name).reduce((w, k) => withOwnRows(w, k, shape, t), weights)
        : weights;
      const prefix = `${name}/`;
      const xL = crossNetworkOnnx(g, own, x, prefix);
      const logit = towerOnnx(
        g,
        own,
        name,
        isParallelCross(weights, prefix) ? x : xL,
        countLayers(weights, name),
      );
      Object.assign(out, addCrossLogitsOnnx(g, own, xL, { [head.name]: logit }, prefix));
    });
    return out;
  },
};

/** The kernel applied to x: the first hidden layer's, or the logit's when there is none. */
function firstKernel(params: Readonly<Record<string, unknown>>, name: string): string {
  return countLayers(params, name) > 0 ? `${name}/0/kernel` : `${name}/logit/kernel`;
}

/**
 * The kernels whose rows are x's columns: each cross layer's down map, the first layer's, and
 * with the parallel layout the cross tower's first layer (it reads x_L, x's columns too).
 */
function inputKernels(params: Readonly<Record<string, unknown>>, name: string): string[] {
  const cross = Array.from(
    { length: countCrossLayers(params, `${name}/`) },
    (_, l) => `${name}/cross_${l}/down/kernel`,
  );
  const towers = Object.keys(params).filter(
    (k) => k.startsWith(`${name}/cross_tower_`) && k.endsWith("/0/kernel"),
  );
  return [...cross, firstKernel(params, name), ...towers];
}

/** Per x column: 1 where head `t` reads it, 0 on the other heads' embedding copies. */
function ownColumns(shape: ModelShape, t: number): Float32Array {
  const owner = shape.columnOwner;
  return Float32Array.from({ length: shape.inputWidth }, (_, c) =>
    owner === undefined || owner[c] === -1 || owner[c] === t ? 1 : 0,
  );
}

/** ownColumns as a [inputWidth, 1] tensor, to multiply the first kernel's rows by. */
function ownMask(shape: ModelShape, t: number): tf.Tensor2D {
  return tf.tensor2d(ownColumns(shape, t), [shape.inputWidth, 1]);
}

/** `weights` with the first kernel's rows for the other heads' copies zeroed (ownMask's twin). */
function withOwnRows(weights: Weights, kernel: string, shape: ModelShape, t: number): Weights {
  const w = weights[kernel];
  if (!w) return weights; // towerOnnx names the missing parameter
  const cols = w.shape[1]!;
  const own = ownColumns(shape, t);
  const values = Float32Array.from(w.values);
  own.forEach((keep, r) => {
    if (keep === 0) values.fill(0, r * cols, (r + 1) * cols);
  });
  return { ...weights, [kernel]: { shape: w.shape, values } };
}
