/**
 * What one training step consumes and produces: a labelled batch, its losses and the gradients
 * of the sparse path. Below the training loop (train-network.ts), its optimiser
 * (network-optimizer.ts) and the data-parallel workers (parallel-optimizer.ts), which exchange these.
 */
import type * as tf from "@tensorflow/tfjs";
import type { EncodedBatch } from "../../shared/encoder/encode.ts";

export interface LabelledBatch extends EncodedBatch {
  labels: Record<string, Float32Array>;
  /** A key per row for its group (spec.group): the ranking loss compares rows of one group. */
  groups?: Uint32Array | null;
}

export interface StepLoss {
  /** The minimised loss (weighted, with any ranking term). */
  total: number;
  /** Each head's own loss, in config.heads order. */
  tasks: Float32Array;
}

/**
 * One batch's losses and gradients for the sparse path: the dense ones by position in the
 * optimiser's variable list (a tensor, or values when they were averaged outside tfjs; null: no
 * gradient), the table's by row.
 */
export interface BatchGradients {
  loss: StepLoss;
  vars: (tf.Tensor | Float32Array | null)[];
  rows: Int32Array;
  /** [rows.length, embeddingDim] row-major. */
  table: Float32Array;
}

export type GradientSource = (data: LabelledBatch, idx: Int32Array) => BatchGradients;

/** How the embedding table is updated: only the rows a batch touched, or as one dense tensor. */
export type EmbeddingUpdates = "sparse" | "dense";
