/** The common interface every architecture file implements (one file per architecture). */
import type * as tf from "@tensorflow/tfjs";
import type { GraphBuilder } from "../export/onnx-graph.ts";

export interface HeadSpec {
  name: string;
  type: "binary" | "regression";
}

/** What the input layer hands an architecture: x is [n, inputWidth]. */
export interface ModelShape {
  inputWidth: number;
  heads: HeadSpec[];
}

/** Hidden layer sizes; each architecture reads the ones it uses. */
export interface ArchOptions {
  bottom: number[];
  tower: number[];
}

export const DEFAULT_ARCH_OPTIONS: ArchOptions = { bottom: [128, 64], tower: [32] };

/** Parameters by name. Names are stable: they are the keys of the saved weights. */
export type Params = Record<string, tf.Variable>;

/** Saved parameter values, as read by the exporter (no tfjs needed to export). */
export type Weights = Record<string, { shape: number[]; values: Float32Array }>;

export interface Architecture {
  name: string;
  /** Creates the parameters; `seed` makes initialisation reproducible. */
  init(shape: ModelShape, options: ArchOptions, seed: number): Params;
  /** x [n, inputWidth] -> one logit tensor [n, 1] per head. */
  forward(params: Params, x: tf.Tensor2D, shape: ModelShape): Record<string, tf.Tensor2D>;
  /** The same computation as ONNX nodes: x is a graph value [n, inputWidth]; returns logit names. */
  toOnnx(g: GraphBuilder, weights: Weights, x: string, shape: ModelShape): Record<string, string>;
}
