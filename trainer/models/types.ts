/** The common interface every architecture file implements (one file per architecture). */
import type * as tf from "@tensorflow/tfjs";
import type { GraphBuilder } from "../core/onnx-graph.ts";

export interface HeadSpec {
  name: string;
  type: "binary" | "regression";
  /** The task this one is conditional on (spec `given`, e.g. purchase given click); esmm and
   * cross-attention wire the heads along it, the other architectures ignore it. */
  given?: string;
  /** Regression heads: the training loss (default "mse") and Huber's delta (default 1). */
  loss?: "mse" | "huber";
  delta?: number;
  /**
   * Regression heads: the network's output is the (transformed) label standardised,
   * (y − mean) / std, with both from the training labels (train/target-scale.ts). Absent only in
   * format-1 models (./layout-format.ts), whose output is the label itself.
   */
  scale?: TargetScale;
}

export interface TargetScale {
  mean: number;
  std: number;
}

/** What the input layer hands an architecture: x is [n, inputWidth]. */
export interface ModelShape {
  inputWidth: number;
  heads: HeadSpec[];
  /**
   * Per x column, the index of the head that owns it, or -1 for a column every head reads.
   * Present only when the embeddings come in one copy per head (Architecture.embeddingCopies).
   */
  columnOwner?: readonly number[];
}

/** Hidden layer sizes and expert counts; each architecture reads the ones it uses. */
export interface ArchOptions {
  bottom: number[];
  tower: number[];
  /** mmoe: number of experts shared by every task's gate. */
  experts: number;
  /** mmoe, ple: hidden layer sizes of each expert MLP (the last one is the expert's width). */
  expertSizes: number[];
  /** ple: shared experts per level. */
  sharedExperts: number;
  /** ple: task-specific experts per task and level. */
  taskExperts: number;
  /** ple: number of extraction (CGC) levels. */
  levels: number;
  /** Every architecture: cross layers on the input before it (./cross-network.ts; 0: none). */
  cross: number;
  /** The rank of each cross layer's map. */
  crossRank: number;
  /**
   * Where the cross layers sit (./cross-network.ts). stacked: the architecture reads their
   * output. parallel: the architecture reads the input itself, and a small tower per head on the
   * cross output adds its logit (after DCN-v2's parallel form), so the factorised graph can keep
   * its once-per-request half.
   */
  crossLayout: CrossLayout;
}

export type CrossLayout = "stacked" | "parallel";

export const DEFAULT_ARCH_OPTIONS: ArchOptions = {
  bottom: [128, 64],
  tower: [32],
  experts: 4,
  expertSizes: [64, 32],
  sharedExperts: 2,
  taskExperts: 1,
  // One CGC level: against two, mean held-out AUC over seeds 42 / 11 / 12 was higher or level
  // on every set tried: sparse-purchase simulator +0.0098, simulator purchase +0.0044,
  // census-like income +0.0006 (never married -0.0003), threshold world a +0.0013, b +0.0002.
  // Two levels stopped at epoch 2 in two seeds of three on the sparse task. --levels 2 remains.
  levels: 1,
  // Two low-rank cross layers: against none, mean held-out AUC over seeds 42 / 11 / 12 was higher
  // or level on all eight quality sets (Lending Club +0.0033, nmes +0.0033 / +0.0050, MovieLens
  // -0.0001 / +0.0022, sparse-world purchase +0.0018, thresholds +0.0008 / +0.0012); seeds 1-6
  // on the two small files gave less (Lending Club +0.0010, nmes +0.0007 / -0.0006). The price:
  // no --factorised export (train with --cross-layout parallel or --cross 0 for that) and ×1.2
  // session.run at the edge.
  cross: 2,
  crossRank: 16,
  crossLayout: "stacked",
};

/** Parameters by name. Names are stable: they are the keys of the saved weights. */
export type Params = Record<string, tf.Variable>;

/** Saved parameter values, as read by the exporter (no tfjs needed to export). */
export type Weights = Record<string, { shape: number[]; values: Float32Array }>;

export interface Architecture {
  name: string;
  /**
   * How many copies of every embedding the network needs: one per head gives each head its own
   * embeddings (single), absent means one table that every head shares.
   */
  embeddingCopies?(heads: readonly HeadSpec[]): number;
  /**
   * The architecture builds its cross layers itself, one network per task (single: shared cross
   * layers would carry one task's gradient into another's embeddings); network.ts adds none.
   */
  ownCross?: boolean;
  /** Creates the parameters; `seed` makes initialisation reproducible. */
  init(shape: ModelShape, options: ArchOptions, seed: number): Params;
  /** x [n, inputWidth] -> one logit tensor [n, 1] per head. */
  forward(params: Params, x: tf.Tensor2D, shape: ModelShape): Record<string, tf.Tensor2D>;
  /** The same computation as ONNX nodes: x is a graph value [n, inputWidth]; returns logit names. */
  toOnnx(g: GraphBuilder, weights: Weights, x: string, shape: ModelShape): Record<string, string>;
  /**
   * For an architecture whose served logits are a function of each task's own logit (esmm: the
   * product along `given`): forward = combine(taskLogits). Parallel cross layers add their
   * logits to the task logits, before `combine`, so a product stays a product of probabilities.
   */
  taskLogits?: {
    forward(params: Params, x: tf.Tensor2D, shape: ModelShape): Record<string, tf.Tensor2D>;
    toOnnx(g: GraphBuilder, weights: Weights, x: string, shape: ModelShape): Record<string, string>;
    combine(z: Record<string, tf.Tensor2D>, shape: ModelShape): Record<string, tf.Tensor2D>;
    combineOnnx(g: GraphBuilder, z: Record<string, string>, shape: ModelShape): Record<string, string>;
  };
}
