/**
 * Warm start (--init-from DIR): begin from an earlier model's weights instead of random ones,
 * the nightly pipeline's incremental training. Tonight's encoder is fitted afresh, so the
 * embedding table is carried over by meaning, not by position:
 *
 * - a categorical value keeps its learned row wherever tonight's vocabulary puts it (new values
 *   start fresh; the missing and out-of-vocabulary rows carry over too);
 * - hashed features and numeric quantile buckets carry over block for block when their size is
 *   unchanged (bucket k is still the k-th quantile, even if its edges moved a little);
 * - every other parameter carries over when its name and shape match, except cross layers
 *   whose layout changed (--cross-layout): the same weights mean something else beside the
 *   architecture than in front of it.
 *
 * What could not be carried over is reported, never silently dropped.
 */
import * as tf from "@tensorflow/tfjs";
import type { EncoderState, FeatureState } from "../../shared/encoder/state.ts";
import { MISSING_ID, RESERVED_IDS } from "../../shared/encoder/state.ts";
import type { TrainedModel } from "../artifact/trained-model.ts";
import type { NetworkConfig } from "../models/network.ts";
import type { Params } from "../models/types.ts";

export interface WarmStartReport {
  /** Parameters copied whole, and those left at their fresh initialisation (name: reason). */
  copied: string[];
  fresh: string[];
  /** Embedding rows carried over, of all rows in tonight's table. */
  embeddingRows: { copied: number; total: number };
}

export function warmStart(
  params: Params,
  config: NetworkConfig,
  encoder: EncoderState,
  previous: TrainedModel,
): WarmStartReport {
  const report: WarmStartReport = {
    copied: [],
    fresh: [],
    embeddingRows: { copied: 0, total: config.vocabSize },
  };
  const layout = (c: NetworkConfig) => c.options.crossLayout ?? "stacked";
  const relaid = layout(previous.config) !== layout(config);
  for (const [name, variable] of Object.entries(params)) {
    const old = previous.weights[name];
    if (old && relaid && /(^|\/)cross_\d+\//.test(name)) {
      report.fresh.push(`${name}: cross layers ${layout(previous.config)} before, ${layout(config)} now`);
      continue;
    }
    if (name === "embedding") {
      if (!old || old.shape[1] !== config.embeddingDim) {
        report.fresh.push(`embedding: dimension ${old?.shape[1]} before, ${config.embeddingDim} now`);
        continue;
      }
      const table = Float32Array.from(variable.dataSync() as Float32Array);
      report.embeddingRows.copied = copyEmbeddingRows(
        table,
        old.values,
        config.embeddingDim,
        encoder,
        previous.encoder,
      );
      assign(variable, table);
      continue;
    }
    if (!old) report.fresh.push(`${name}: not in the earlier model`);
    else if (old.shape.join("x") !== variable.shape.join("x"))
      report.fresh.push(`${name}: shape [${old.shape}] before, [${variable.shape}] now`);
    else {
      assign(variable, old.values);
      report.copied.push(name);
    }
  }
  return report;
}

/**
 * A [vocabSize] mask: 1 on tonight's embedding rows that warmStart fills from the earlier model
 * with a value's learning (none when the table's width changed): what a user or item learnt keeps
 * it on a night they are absent. The missing and out-of-vocabulary rows are left out, and so are
 * rows the earlier training never read (an empty hash bucket): where no row reads them tonight
 * they are settled again for tonight's network (../train/unread-rows.ts, unseen-rows.ts), not
 * kept as settled for last night's, or at a random start.
 */
export function carriedRows(
  config: NetworkConfig,
  encoder: EncoderState,
  previous: TrainedModel,
): Uint8Array {
  const mask = new Uint8Array(config.vocabSize);
  if (previous.weights.embedding?.shape[1] !== config.embeddingDim) return mask;
  const earlier = new Map(previous.encoder.features.map((f) => [f.name, f]));
  for (const feature of encoder.features) {
    const old = earlier.get(feature.name);
    if (!old) continue;
    const reserved = reservedRows(feature);
    const learnt = learntRows(old);
    for (const [row, oldRow] of rowPairs(feature, old)) if (!reserved(row) && learnt(oldRow)) mask[row] = 1;
  }
  return mask;
}

/**
 * Whether the earlier model's training read a row of this feature: every vocabulary entry and
 * quantile bucket was; a hash bucket was where its training count (the frequency column's) is
 * over 0, and is taken as unread without one (a feature hashed past the columns' range).
 */
function learntRows(before: FeatureState): (row: number) => boolean {
  if (before.kind === "categorical" && before.hashBuckets !== undefined) {
    const counts = before.frequency?.counts;
    return (row) => (counts?.[row - before.offset - RESERVED_IDS] ?? 0) > 0;
  }
  return () => true;
}

/** A feature's missing and out-of-vocabulary rows (a number's missing bucket). */
function reservedRows(f: FeatureState): (row: number) => boolean {
  if (f.kind === "numeric") return (row) => f.buckets !== undefined && row === f.buckets.offset + MISSING_ID;
  if (f.kind === "categorical" || f.kind === "multi_categorical")
    return (row) => row >= f.offset && row < f.offset + RESERVED_IDS;
  return () => false;
}

/** Copies rows of `from` (the earlier table) into `to` by feature and value; returns rows copied. */
function copyEmbeddingRows(
  to: Float32Array,
  from: Float32Array,
  dim: number,
  encoder: EncoderState,
  before: EncoderState,
): number {
  const earlier = new Map(before.features.map((f) => [f.name, f]));
  let copied = 0;
  const copyRow = (newRow: number, oldRow: number) => {
    to.set(from.subarray(oldRow * dim, (oldRow + 1) * dim), newRow * dim);
    copied++;
  };
  for (const feature of encoder.features) {
    const old = earlier.get(feature.name);
    if (!old) continue;
    for (const [newRow, oldRow] of rowPairs(feature, old)) copyRow(newRow, oldRow);
  }
  return copied;
}

/** [tonight's row, the earlier row] for each embedding row of a feature that has a counterpart. */
function rowPairs(now: FeatureState, before: FeatureState): [number, number][] {
  const pairs: [number, number][] = [];
  const block = (a: { offset: number; size: number }, b: { offset: number; size: number }) => {
    if (a.size === b.size) for (let i = 0; i < a.size; i++) pairs.push([a.offset + i, b.offset + i]);
  };
  if (now.kind === "numeric" && before.kind === "numeric") {
    if (now.buckets && before.buckets) block(now.buckets, before.buckets);
  } else if (now.kind === "categorical" && before.kind === "categorical") {
    if (now.hashBuckets !== undefined || before.hashBuckets !== undefined) {
      if (now.hashBuckets === before.hashBuckets) block(now, before);
    } else {
      for (let i = 0; i < RESERVED_IDS; i++) pairs.push([now.offset + i, before.offset + i]);
      const oldIndex = new Map((before.vocab ?? []).map((key, i) => [key, i]));
      (now.vocab ?? []).forEach((key, i) => {
        const j = oldIndex.get(key);
        if (j !== undefined) pairs.push([now.offset + RESERVED_IDS + i, before.offset + RESERVED_IDS + j]);
      });
    }
  }
  return pairs;
}

function assign(variable: tf.Variable, values: Float32Array): void {
  tf.tidy(() => variable.assign(tf.tensor(values, variable.shape)));
}
