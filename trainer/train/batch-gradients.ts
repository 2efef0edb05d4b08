/**
 * One batch's objective and its gradients: the batch copied out of the data set, the minimised
 * loss, and `shardGradients`, the one gradient computation shared by the in-thread optimiser
 * (./network-optimizer.ts) and the data-parallel workers (./parallel-worker.ts).
 */
import * as tf from "@tensorflow/tfjs";
import type { EncodedBatch } from "../../shared/encoder/encode.ts";
import { type NetworkConfig, networkLogits } from "../models/network.ts";
import type { Params } from "../models/types.ts";
import { headLosses, listwiseLoss } from "./loss.ts";
import type { TaskWeighting } from "./task-weighting.ts";

export interface BatchTensors {
  dense: tf.Tensor2D;
  ids: tf.Tensor2D;
  /** Missing labels (NaN in the data) are 0 here, and the head has row weights. */
  labels: Record<string, tf.Tensor2D>;
  /** Per head with a missing label in the batch: [n, 1], its loss's weight per row (see labelWeights). */
  labelWeights: Record<string, tf.Tensor2D>;
  /** Each row's group within the batch, 0..groupCount-1 (data with groups only). */
  segments?: tf.Tensor1D;
  groupCount: number;
  /**
   * [rows of params.embedding, 1]: 1 / how many times the batch reads each embedding row (0 for
   * rows it does not read); what the embedding L2 penalty weighs each row by. Training only.
   */
  readShares?: tf.Tensor2D;
}

export interface BatchArrays {
  dense: Float32Array;
  ids: Int32Array;
  labels: Record<string, Float32Array>;
  labelWeights: Record<string, Float32Array>;
  segments?: Int32Array;
  groupCount: number;
}

type BatchSource = EncodedBatch & { labels?: Record<string, Float32Array>; groups?: Uint32Array | null };

/**
 * Row weights for the loss of a head with missing labels (NaN): 1/B where the row has its label,
 * 0 where it does not, B the batch's rows. Each label then weighs what a label of a fully
 * labelled task weighs, and a task labelled on a sixth of the rows has a sixth of the say in the
 * shared layers. (Stop 19 divided by the labelled rows instead, the mean over them: a noisy
 * dwell-given-click task then pulled 6× per label, and on the simulator cost purchase 0.006 AUC
 * in every seed.) A shard's weights are 1/its rows, so shards averaged by share are the batch.
 * Null when nothing is missing.
 */
export function labelWeights(values: Float32Array): Float32Array | null {
  if (!values.some(Number.isNaN)) return null;
  return values.map((y) => (Number.isNaN(y) ? 0 : 1 / values.length));
}

/** The rows `idx` of a data set (a batch, or a shard of one), copied into one contiguous batch. */
export function batchArrays(config: NetworkConfig, data: BatchSource, idx: Int32Array): BatchArrays {
  const n = idx.length;
  const dense = new Float32Array(n * config.denseSize);
  const ids = new Int32Array(n * config.idSlots);
  for (let i = 0; i < n; i++) {
    const r = idx[i]!;
    dense.set(data.dense.subarray(r * config.denseSize, (r + 1) * config.denseSize), i * config.denseSize);
    ids.set(data.ids.subarray(r * config.idSlots, (r + 1) * config.idSlots), i * config.idSlots);
  }
  const labels: Record<string, Float32Array> = {};
  const weights: Record<string, Float32Array> = {};
  for (const [name, values] of Object.entries(data.labels ?? {})) {
    const y = Float32Array.from(idx, (r) => values[r]!);
    const w = labelWeights(y);
    labels[name] = w ? y.map((v) => (Number.isNaN(v) ? 0 : v)) : y;
    if (w) weights[name] = w;
  }
  if (!data.groups) return { dense, ids, labels, labelWeights: weights, groupCount: 0 };
  const local = new Map<number, number>();
  const segments = Int32Array.from(idx, (r) => {
    const g = data.groups![r]!;
    let k = local.get(g);
    if (k === undefined) {
      k = local.size;
      local.set(g, k);
    }
    return k;
  });
  return { dense, ids, labels, labelWeights: weights, segments, groupCount: local.size };
}

export function tensorsOf(
  config: NetworkConfig,
  arrays: BatchArrays,
  n: number,
  tableRows?: number,
): BatchTensors {
  const labels: Record<string, tf.Tensor2D> = {};
  for (const [name, values] of Object.entries(arrays.labels)) labels[name] = tf.tensor2d(values, [n, 1]);
  const labelWeights: Record<string, tf.Tensor2D> = {};
  for (const [name, w] of Object.entries(arrays.labelWeights)) labelWeights[name] = tf.tensor2d(w, [n, 1]);
  return {
    dense: tf.tensor2d(arrays.dense, [n, config.denseSize]),
    ids: tf.tensor2d(arrays.ids, [n, config.idSlots], "int32"),
    labels,
    labelWeights,
    ...(arrays.segments ? { segments: tf.tensor1d(arrays.segments, "int32") } : {}),
    groupCount: arrays.groupCount,
    ...(tableRows !== undefined && config.idSlots > 0
      ? { readShares: tf.tensor2d(readShares(arrays.ids, tableRows), [tableRows, 1]) }
      : {}),
  };
}

/** A batch as tensors; with `tableRows`, also the read shares of that many embedding rows. */
export function batchTensors(
  config: NetworkConfig,
  data: BatchSource,
  idx: Int32Array,
  tableRows?: number,
): BatchTensors {
  return tensorsOf(config, batchArrays(config, data, idx), idx.length, tableRows);
}

/** How many times `ids` reads each of `tableRows` rows. */
export function readCounts(ids: Int32Array, tableRows: number): Float32Array {
  const counts = new Float32Array(tableRows);
  for (const id of ids) counts[id] = counts[id]! + 1;
  return counts;
}

/** 1 / the number of times `ids` reads each of `tableRows` rows; 0 for rows never read. */
export function readShares(ids: Int32Array, tableRows: number): Float32Array {
  return readCounts(ids, tableRows).map((c) => (c > 0 ? 1 / c : 0));
}

/**
 * L2 penalties: λ/2·Σw² on dense kernels, and on the embedding rows each batch reads, each row's
 * term divided by how many times the batch reads it. A number sets both.
 *
 * The division makes the embedding penalty adaptive to frequency (as DIN's regulariser): a rare
 * id, read once, gets the full λ against one example's gradient, while a value read in every
 * other row (a binary feature) gets λ/256 against a large one. One strength then fits both kinds
 * of data that a plain penalty forces a choice between. On the recommendation simulator, user and
 * item ids memorise unless held hard; on the 1980 census Fertility set (AER) a penalty that
 * strong keeps the network at the linear model, because the one interaction there (first two
 * children of the same sex) costs more penalty than it gains loss. mmoe test AUC, seed 42:
 *
 * | embedding / kernel L2 | simulator purchase | Fertility morekids |
 * |---|---|---|
 * | 1e-3 / 1e-3, plain | 0.6806 | 0.5805 |
 * | 1e-3 / 1e-4, plain | 0.6656 | 0.5926 |
 * | 1e-2 / 1e-4, plain | 0.6800 | 0.5806 |
 * | 1e-2 / 1e-4, divided by reads (the default) | 0.6802 | 0.5926 |
 *
 * (logistic regression 0.5799, gradient-boosted trees 0.5926 on Fertility.)
 */
export interface L2Penalty {
  embedding: number;
  kernel: number;
}

/**
 * The default L2 penalties (the embedding rows' share divided by their reads). Against none at
 * all, a penalty kept the simulator's id embeddings from memorising (best epoch 1 → 3-4, purchase
 * AUC +0.0033 to +0.0083); against a plain 1e-3 on both, this pair keeps the simulator's figures
 * and lets interactions through (the table above).
 */
export const DEFAULT_L2: L2Penalty = { embedding: 1e-2, kernel: 1e-4 };

export function l2Penalty(l2: L2Penalty | number | undefined): L2Penalty {
  if (l2 === undefined) return { embedding: 0, kernel: 0 };
  return typeof l2 === "number" ? { embedding: l2, kernel: l2 } : l2;
}

export interface Objective {
  (params: Params, inputs: BatchTensors): { total: tf.Scalar; perTask: tf.Tensor1D };
  /** Its embedding penalty weighs rows by their reads: the inputs must carry `readShares`. */
  readonly needsReadShares: boolean;
}

/** The minimised loss of a batch: the weighted task losses plus the optional ranking term. */
export function batchObjective(
  config: NetworkConfig,
  weighting: TaskWeighting,
  ranking: number,
  l2: L2Penalty,
): Objective {
  const binary = config.heads.filter((h) => h.type === "binary");
  const objective = (params: Params, inputs: BatchTensors) => {
    const logits = networkLogits(params, config, inputs);
    const losses = headLosses(config.heads, logits, inputs.labels, inputs.labelWeights);
    let total = weighting.combine(losses);
    // In the sparse path `embedding` is the batch's own rows; in the dense one, the whole table
    // with 0 shares for the rows the batch does not read.
    const penalised = Object.entries(params).flatMap(([name, v]) => {
      if (name === "embedding" && l2.embedding > 0) {
        const squares = tf.square(v);
        const weighed = inputs.readShares ? tf.mul(squares, inputs.readShares) : squares;
        return [tf.mul(l2.embedding / 2, tf.sum(weighed))];
      }
      if (name.endsWith("/kernel") && l2.kernel > 0) return [tf.mul(l2.kernel / 2, tf.sum(tf.square(v)))];
      return [];
    });
    if (penalised.length > 0) total = tf.add(total, tf.addN(penalised));
    if (ranking > 0 && inputs.segments) {
      for (const h of binary) {
        const term = listwiseLoss(
          logits[h.name]!,
          inputs.labels[h.name]!,
          inputs.segments,
          inputs.groupCount,
          inputs.labelWeights[h.name],
        );
        total = tf.add(total, tf.mul(ranking, term));
      }
    }
    return { total, perTask: tf.stack(config.heads.map((h) => losses[h.name]!)) as tf.Tensor1D };
  };
  return Object.assign(objective, { needsReadShares: l2.embedding > 0 });
}

/** A batch (or a shard of one) as the sparse path trains on it. */
export interface Shard {
  /** The rows, their ids renumbered into the table rows below (SparseOptimizer.lookup's `local`). */
  arrays: BatchArrays;
  n: number;
  /** The embedding rows the shard reads, [tableRows, embeddingDim] row-major. */
  tableRows: number;
  tableValues: Float32Array;
}

export interface ShardGradients {
  loss: tf.Scalar;
  /** Each head's own loss, in config.heads order. */
  tasks: tf.Tensor1D;
  /** d loss / d the shard's table rows [tableRows, E]; null when the network has no embedding. */
  table: tf.Tensor | null;
  /** d loss / d each of `vars`, null where the loss does not depend on it. */
  vars: (tf.Tensor | null)[];
}

/**
 * Loss and gradients of one shard. The network gathers from the shard's own table rows with
 * local ids, so the table's gradient is [U, E], one row per id the shard touched. `vars` are
 * the other tensors to differentiate (the dense parameters, the weighting's variables); `params`
 * may hold plain tensors in place of variables (a worker's copy). The caller disposes the result.
 */
export function shardGradients(
  objective: Objective,
  config: NetworkConfig,
  params: Params,
  vars: readonly tf.Tensor[],
  shard: Shard,
): ShardGradients {
  // tf.tidy keeps the tensors it finds in the result (nulls included); its type does not allow null.
  const tidy = tf.tidy as unknown as (f: () => ShardGradients) => ShardGradients;
  return tidy(() => {
    const table =
      config.idSlots > 0 ? tf.tensor2d(shard.tableValues, [shard.tableRows, config.embeddingDim]) : null;
    const inputs = tensorsOf(
      config,
      shard.arrays,
      shard.n,
      table && objective.needsReadShares ? shard.tableRows : undefined,
    );
    // A plain tensor in the variable's place: only read (gathered from), never assigned.
    const shardParams: Params = table ? { ...params, embedding: table as unknown as tf.Variable } : params;
    let tasks: tf.Tensor1D | undefined;
    const { value, grads } = tf.engine().gradients(
      () => {
        const { total, perTask } = objective(shardParams, inputs);
        tasks = tf.keep(perTask);
        return total;
      },
      table ? [table, ...vars] : [...vars],
      undefined,
      true,
    );
    const offset = table ? 1 : 0;
    return {
      loss: value as tf.Scalar,
      tasks: tasks!,
      table: table ? (grads[0] ?? tf.zerosLike(table)) : null,
      vars: vars.map((_, i) => grads[i + offset] ?? null),
    };
  });
}
