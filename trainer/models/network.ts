/**
 * The whole network: the input layer (numeric inputs + one shared embedding table for every
 * categorical slot) feeding an architecture, then per-head output functions.
 *
 *   dense [n, D], ids [n, C] -> gather(embedding) [n, C, E]
 *     -> pool each bag's slots: Σ_k dense[:, weights + k] · emb[:, slot + k] -> [n, B, E]
 *     -> reshape [n, B*E]          (B = C − Σ (pool.count − 1): one block per pool)
 *   x = concat(dense, embedded) [n, D + B*E] -> cross layers, if any -> architecture
 *     -> logits [n, 1] per head
 * (with --cross-layout parallel, the architecture reads x and the cross layers' output adds a
 * small tower's logit per head: ./cross-network.ts)
 */
import * as tf from "@tensorflow/tfjs";
import type { EmbeddingPool } from "../../shared/encoder/state.ts";
import {
  addCrossLogits,
  crossNetwork,
  initCross,
  initCrossTowers,
  isParallelCross,
} from "./cross-network.ts";
import { architecture } from "./registry.ts";
import {
  type ArchOptions,
  DEFAULT_ARCH_OPTIONS,
  type HeadSpec,
  type ModelShape,
  type Params,
  type Weights,
} from "./types.ts";

export interface NetworkConfig {
  arch: string;
  options: ArchOptions;
  /** Width of the embedding table: `embeddingCopies` equal slices of the per-head dimension. */
  embeddingDim: number;
  /** Copies of every embedding, side by side in the table, one per head; absent: 1 (shared). */
  embeddingCopies?: number;
  denseSize: number;
  idSlots: number;
  vocabSize: number;
  /** Id slots whose embeddings are mean-pooled into one (bag features); absent: none. */
  pools?: readonly EmbeddingPool[];
  heads: (HeadSpec & {
    transform?: "none" | "log1p";
    /** Binary heads: served p = σ(scale·logit + shift), fitted after training (train/platt-scaling.ts). */
    calibration?: { scale: number; shift: number };
  })[];
}

export function modelShape(config: NetworkConfig): ModelShape {
  const blocks = config.idSlots - (config.pools ?? []).reduce((sum, p) => sum + p.count - 1, 0);
  const inputWidth = config.denseSize + blocks * config.embeddingDim;
  const copies = config.embeddingCopies ?? 1;
  if (copies <= 1) return { inputWidth, heads: config.heads };
  if (config.embeddingDim % copies !== 0)
    throw new Error(`network: embedding width ${config.embeddingDim} does not split into ${copies} copies`);
  const slice = config.embeddingDim / copies;
  const columnOwner = Array.from({ length: inputWidth }, (_, c) =>
    c < config.denseSize ? -1 : Math.floor(((c - config.denseSize) % config.embeddingDim) / slice),
  );
  return { inputWidth, heads: config.heads, columnOwner };
}

/** The embedding table's width and copies for `arch`, with `dim` per head. */
export function embeddingLayout(
  arch: string,
  heads: readonly HeadSpec[],
  dim: number,
): Pick<NetworkConfig, "embeddingDim" | "embeddingCopies"> {
  const copies = architecture(arch).embeddingCopies?.(heads) ?? 1;
  return copies > 1 ? { embeddingDim: dim * copies, embeddingCopies: copies } : { embeddingDim: dim };
}

/** The embedding dimension each head sees (the table width over its copies). */
export function embeddingDimPerHead(config: NetworkConfig): number {
  return config.embeddingDim / (config.embeddingCopies ?? 1);
}

/**
 * A run of the gathered embeddings [n, C, E] that becomes part of x: `count` slots from `slot`
 * kept as they are, or (with `weights`) summed with the dense columns from `weights` as weights.
 */
export interface EmbeddingBlock {
  slot: number;
  count: number;
  weights?: number;
}

/**
 * The blocks over gathered ids that hold the global id slots `slots` (in order) with a dense
 * input holding the global columns `dense`; by default all of them (the plain graph). Also the
 * x columns the blocks' output fills, in order: a factorised side reads a subset of the slots.
 */
export function embeddingBlocks(
  config: NetworkConfig,
  slots: readonly number[] = Array.from({ length: config.idSlots }, (_, i) => i),
  dense: readonly number[] = Array.from({ length: config.denseSize }, (_, i) => i),
): { blocks: EmbeddingBlock[]; columns: number[] } {
  const E = config.embeddingDim;
  const pools = [...(config.pools ?? [])].sort((a, b) => a.slot - b.slot);
  const poolOf = new Map<number, EmbeddingPool>();
  const xBlock = new Array<number>(config.idSlots); // global slot -> its block's index in x
  let block = 0;
  for (let s = 0, p = 0; s < config.idSlots; ) {
    const pool = pools[p];
    if (pool?.slot === s) {
      if (pool.count < 1 || s + pool.count > config.idSlots || pool.weights + pool.count > config.denseSize)
        throw new Error(`network: pool at id slot ${s} (${pool.count} slots) is outside the inputs`);
      for (let k = 0; k < pool.count; k++) {
        poolOf.set(s + k, pool);
        xBlock[s + k] = block;
      }
      s += pool.count;
      p++;
    } else xBlock[s++] = block;
    block++;
  }
  if (poolOf.size !== pools.reduce((n, p) => n + p.count, 0))
    throw new Error("network: embedding pools overlap or do not start on an id slot");
  const blocks: EmbeddingBlock[] = [];
  const columns: number[] = [];
  const xColumns = (s: number) => Array.from({ length: E }, (_, e) => config.denseSize + xBlock[s]! * E + e);
  for (let i = 0; i < slots.length; ) {
    const s = slots[i]!;
    const pool = poolOf.get(s);
    if (pool) {
      const w = dense.indexOf(pool.weights);
      const whole = Array.from({ length: pool.count }, (_, k) => k);
      if (
        pool.slot !== s ||
        w < 0 ||
        !whole.every((k) => slots[i + k] === s + k && dense[w + k] === pool.weights + k)
      )
        throw new Error(`network: the inputs hold only part of the pool at id slot ${pool.slot}`);
      blocks.push({ slot: i, count: pool.count, weights: w });
      i += pool.count;
    } else {
      const last = blocks[blocks.length - 1];
      if (last && last.weights === undefined && last.slot + last.count === i) last.count++;
      else blocks.push({ slot: i, count: 1 });
      i++;
    }
    columns.push(...xColumns(s));
  }
  return { blocks, columns };
}

export function initNetwork(config: NetworkConfig, seed: number): Params {
  const shape = modelShape(config);
  // Options saved before cross layers existed have neither field: those models have none.
  // Options saved before the layout existed are stacked.
  const { cross = 0, crossRank = DEFAULT_ARCH_OPTIONS.crossRank, crossLayout = "stacked" } = config.options;
  const arch = architecture(config.arch);
  const params = arch.init(shape, { ...config.options, cross, crossRank, crossLayout }, seed);
  if (!arch.ownCross) {
    initCross(params, shape.inputWidth, cross, crossRank, seed + 5000);
    if (cross > 0 && crossLayout === "parallel")
      initCrossTowers(
        params,
        shape.inputWidth,
        config.heads.map((h) => h.name),
        crossRank,
        seed + 6000,
      );
  }
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
  if (config.idSlots > 0) parts.push(embedded(params.embedding!, config, inputs));
  const x = parts.length === 1 ? parts[0]! : tf.concat(parts, 1);
  const arch = architecture(config.arch);
  const shape = modelShape(config);
  const xL = crossNetwork(params, x);
  if (!isParallelCross(params)) return arch.forward(params, xL, shape);
  if (!arch.taskLogits) return addCrossLogits(params, xL, arch.forward(params, x, shape));
  const z = addCrossLogits(params, xL, arch.taskLogits.forward(params, x, shape));
  return arch.taskLogits.combine(z, shape);
}

/** The embedding part of x [n, B*E]: gathered rows, bags pooled by their weights. */
function embedded(table: tf.Tensor, config: NetworkConfig, inputs: NetworkInputs): tf.Tensor2D {
  const n = inputs.ids.shape[0];
  const E = config.embeddingDim;
  const gathered = tf.gather(table, inputs.ids) as tf.Tensor3D; // [n, C, E]
  if (!config.pools?.length) return tf.reshape(gathered, [n, config.idSlots * E]);
  const { blocks } = embeddingBlocks(config);
  const parts = blocks.map((b): tf.Tensor3D => {
    const rows = tf.slice(gathered, [0, b.slot, 0], [n, b.count, E]); // [n, k, E]
    if (b.weights === undefined) return rows;
    const w = tf.reshape(tf.slice(inputs.dense, [0, b.weights], [n, b.count]), [n, b.count, 1]);
    return tf.sum(tf.mul(rows, w), 1, true); // [n, 1, E]
  });
  return tf.reshape(tf.concat(parts, 1), [n, modelShape(config).inputWidth - config.denseSize]);
}

/** Logit -> served value: probability for binary heads, label units for regression heads. */
export function headOutput(head: NetworkConfig["heads"][number], logit: tf.Tensor2D): tf.Tensor2D {
  if (head.type === "binary")
    return tf.sigmoid(
      head.calibration
        ? tf.add<tf.Tensor2D>(tf.mul(logit, head.calibration.scale), head.calibration.shift)
        : logit,
    );
  const value = transformedValue(head, logit);
  return head.transform === "log1p" ? tf.sub(tf.exp(value), 1) : value;
}

/** A regression head's output in transformed label units (the labels' units after log1p). */
export function transformedValue(head: HeadSpec, logit: tf.Tensor2D): tf.Tensor2D {
  return head.scale ? tf.add<tf.Tensor2D>(tf.mul(logit, head.scale.std), head.scale.mean) : logit;
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

/** The current values of parameters, as saved weights (the inverse of paramsFromWeights). */
export function readWeights(params: Params): Weights {
  return Object.fromEntries(
    Object.entries(params).map(([name, v]) => [
      name,
      { shape: [...v.shape], values: Float32Array.from(v.dataSync() as Float32Array) },
    ]),
  );
}
