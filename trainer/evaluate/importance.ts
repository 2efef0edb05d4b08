/**
 * Permutation feature importance: shuffle one feature's encoded column(s) across rows (one
 * seeded permutation for all of them, so a numeric value keeps its missing flag and bucket), run
 * the same predictor, and report how much each task's metric gets worse. Works on encoded
 * batches, so it measures the model the predictor runs (the ONNX graph, for `evaluate`).
 */
import type { EncodedBatch } from "../../shared/encoder/encode.ts";
import { type EncoderState, encodedColumns } from "../../shared/encoder/state.ts";
import { auc, meanSquaredError } from "../core/metrics.ts";
import { createRng, shuffle } from "../core/rng.ts";
import { takeBatchRows } from "../data/take-rows.ts";
import { onlyLabelled } from "../metrics/labelled-rows.ts";
import { type HeadOutputs, transformedOutputs } from "../metrics/task-metrics.ts";

export type Predictor = (batch: EncodedBatch) => Promise<Record<string, Float32Array>>;

export interface ImportanceOptions {
  seed?: number;
  /** Shuffles per feature; the drop is their mean. */
  repeats?: number;
  /** Rows used (a seeded random subset when the batch is larger): cost is features × repeats × rows. */
  maxRows?: number;
}

export const DEFAULT_IMPORTANCE: Required<ImportanceOptions> = { seed: 7, repeats: 1, maxRows: 20_000 };

export interface ImportanceReport {
  /** Per task: "auc" (drop = baseline − shuffled) or "mse" (drop = shuffled − baseline). Larger matters more. */
  metric: Record<string, "auc" | "mse">;
  baseline: Record<string, number>;
  /** Features in encoder order; drops per task. */
  features: { feature: string; drop: Record<string, number> }[];
  rows: number;
  seed: number;
  repeats: number;
}

/** The columns a feature writes (shared with the encoder, which knows every kind's layout). */
export { encodedColumns };

export async function permutationImportance(
  state: EncoderState,
  batch: EncodedBatch,
  labels: Readonly<Record<string, Float32Array>>,
  heads: readonly HeadOutputs[],
  predict: Predictor,
  options: ImportanceOptions = {},
): Promise<ImportanceReport> {
  const { seed, repeats, maxRows } = { ...DEFAULT_IMPORTANCE, ...options };
  if (!Number.isInteger(repeats) || repeats < 1)
    throw new Error(`importance repeats: expected >= 1, got ${repeats}`);
  if (!Number.isInteger(maxRows) || maxRows < 2)
    throw new Error(`importance rows: expected >= 2, got ${maxRows}`);
  const tasks = heads.filter((h) => labels[h.name]);
  const subset = sampleRows(batch.rows, maxRows, seed);
  const base = takeBatchRows(batch, subset);
  const y = Object.fromEntries(
    tasks.map((h) => [h.name, Float32Array.from(subset, (i) => labels[h.name]![i]!)]),
  );
  const score = (outputs: Record<string, Float32Array>) =>
    Object.fromEntries(tasks.map((h) => [h.name, taskScore(h, y[h.name]!, outputs[h.name]!)]));
  const baseline = score(await predict(base));
  const features: ImportanceReport["features"] = [];
  for (const [f, feature] of state.features.entries()) {
    const columns = encodedColumns(feature);
    const sum: Record<string, number> = Object.fromEntries(tasks.map((h) => [h.name, 0]));
    for (let r = 0; r < repeats; r++) {
      const order = shuffle(
        createRng(seed, 1 + f * repeats + r),
        Array.from({ length: base.rows }, (_, i) => i),
      );
      const shuffled = permuteColumns(base, columns, order, state);
      const scores = score(await predict(shuffled));
      for (const h of tasks) {
        const delta = scores[h.name]! - baseline[h.name]!;
        sum[h.name]! += h.type === "binary" ? -delta : delta;
      }
    }
    const drop = Object.fromEntries(Object.entries(sum).map(([t, s]) => [t, s / repeats]));
    features.push({ feature: feature.name, drop });
  }
  return {
    metric: Object.fromEntries(tasks.map((h) => [h.name, h.type === "binary" ? "auc" : "mse"])),
    baseline,
    features,
    rows: base.rows,
    seed,
    repeats,
  };
}

function taskScore(head: HeadOutputs, allLabels: Float32Array, allOutputs: Float32Array): number {
  const { labels, outputs } = onlyLabelled({ labels: allLabels, outputs: allOutputs });
  if (head.type === "binary") return auc(labels, outputs);
  return meanSquaredError(labels, transformedOutputs(head, outputs));
}

/** All rows when there are few enough, else a seeded sample (kept in row order). */
function sampleRows(n: number, maxRows: number, seed: number): number[] {
  const all = Array.from({ length: n }, (_, i) => i);
  if (n <= maxRows) return all;
  return shuffle(createRng(seed, 0), all)
    .slice(0, maxRows)
    .sort((a, b) => a - b);
}

/** A copy of `batch` whose given columns in row r hold the values of row order[r]. */
export function permuteColumns(
  batch: EncodedBatch,
  columns: { dense: readonly number[]; ids: readonly number[] },
  order: readonly number[],
  state: Pick<EncoderState, "denseSize" | "idSlots">,
): EncodedBatch {
  const { denseSize, idSlots } = state;
  const dense = batch.dense.slice();
  const ids = batch.ids.slice();
  for (let r = 0; r < batch.rows; r++) {
    const src = order[r]!;
    for (const c of columns.dense) dense[r * denseSize + c] = batch.dense[src * denseSize + c]!;
    for (const c of columns.ids) ids[r * idSlots + c] = batch.ids[src * idSlots + c]!;
  }
  return { rows: batch.rows, dense, ids };
}
