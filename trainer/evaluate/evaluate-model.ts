/** `evaluate`: metrics of the exported model (run by onnxruntime) on a labelled data file. */

import { fuseHeads } from "../../shared/fusion.ts";
import type { TaskMetrics } from "../../shared/manifest.ts";
import type { DatasetSpec } from "../../shared/spec.ts";
import { groupNdcgs, meanNdcg, meanOfDefined } from "../core/metrics.ts";
import { type Dataset, loadDataset } from "../data/load-dataset.ts";
import type { CalibrationOptions } from "../metrics/calibration.ts";
import { diagnoseTasks, type TaskDiagnostics } from "../metrics/diagnostics.ts";
import { groupRows } from "../metrics/group-auc.ts";
import { labelledAuc } from "../metrics/labelled-rows.ts";
import type { ServedModel } from "../predict/served-model.ts";
import { type ImportanceOptions, type ImportanceReport, permutationImportance } from "./importance.ts";
import { onnxPredictor } from "./onnx-predictor.ts";

export interface EvaluationOptions {
  /** Probability at or above which a row counts as predicted positive (accuracy, precision, recall, F1). */
  threshold?: number;
  calibration?: CalibrationOptions;
  /** Column whose value groups rows for GAUC (e.g. a user id); default spec.group. */
  gaucBy?: string;
  /** Permutation feature importance: computed only when given. */
  importance?: ImportanceOptions;
}

export interface EvaluationReport extends TaskDiagnostics {
  model: { id: string; version: string; file: string };
  rows: number;
  /** Column GAUC grouped by, when any. */
  gaucBy?: string;
  /** Per task; `oracleAuc` on simulated data (AUC of the true probabilities). */
  tasks: Record<string, TaskMetrics & { oracleAuc?: number }>;
  importance?: ImportanceReport;
  /**
   * Ranking within groups (spec.group) by the fused score with the manifest's default weights,
   * NDCG@10 with gains Σ w·label; `oracle*` use the true probabilities instead (simulated data
   * with spec.truth). `input*` rank by the file's row order: the do-nothing baseline.
   */
  ranking?: {
    /** Groups NDCG is the mean over: two rows or more, and something to find. */
    groups: number;
    ndcg10: number;
    inputNdcg10: number;
    oracleNdcg10?: number;
    inputOracleNdcg10?: number;
  };
}

/**
 * `data`: a file, or one already read with `loadDataset` (a caller that scores one file with
 * several models reads it once).
 */
export async function evaluateModel(
  model: ServedModel,
  data: string | Dataset,
  spec: DatasetSpec,
  options: EvaluationOptions = {},
): Promise<EvaluationReport> {
  return (await evaluateWithScores(model, data, spec, options)).report;
}

/** What evaluateWithScores returns: the report, and the row scores it was computed from. */
export interface ScoredEvaluation {
  report: EvaluationReport;
  /** Per head, the served probability (or regression value) of every row, in the data's order. */
  scores: Record<string, Float32Array>;
  /** The data's labels per task, aligned with `scores` (NaN: no label). */
  labels: Dataset["labels"];
  /** With spec.group: each group's NDCG@10 of the fused score, in first-seen order (NaN: no gains). */
  groupNdcg10?: Float64Array;
}

/**
 * evaluateModel, keeping the per-row scores: a caller that compares two models on the same rows
 * (the pipeline gate's paired intervals) needs them, not only the metrics.
 */
export async function evaluateWithScores(
  model: ServedModel,
  data: string | Dataset,
  spec: DatasetSpec,
  options: EvaluationOptions = {},
): Promise<ScoredEvaluation> {
  const dataset = typeof data === "string" ? await loadDataset(data, spec) : data;
  const batch = model.encoder.encodeRows(dataset.rows);
  const predict = onnxPredictor(model);
  const scores = await predict(batch);
  const gaucBy = options.gaucBy ?? spec.group;
  const groups = gaucBy ? groupKeys(dataset, gaucBy, options.gaucBy !== undefined) : null;
  const heads = model.manifest.heads.filter((h) => dataset.labels[h.name]); // no label column: not evaluated
  const diagnostics = diagnoseTasks(heads, dataset.labels, scores, {
    ...(options.threshold !== undefined ? { threshold: options.threshold } : {}),
    ...(options.calibration ? { calibration: options.calibration } : {}),
    groups,
    weights: model.manifest.fusion.defaults.weights,
  });
  const tasks: EvaluationReport["tasks"] = diagnostics.tasks;
  for (const [task, truth] of Object.entries(dataset.truth)) {
    const labels = dataset.labels[task];
    if (tasks[task] && labels) tasks[task]!.oracleAuc = labelledAuc(labels, truth);
  }
  const importance = options.importance
    ? await permutationImportance(
        model.encoder.state,
        batch,
        dataset.labels,
        heads,
        predict,
        options.importance,
      )
    : undefined;
  const ranked = dataset.groups ? rankingQuality(model, dataset, scores) : undefined;
  const report: EvaluationReport = {
    model: { id: model.manifest.id, version: model.manifest.version, file: model.file },
    rows: dataset.rows.length,
    ...(groups && gaucBy ? { gaucBy } : {}),
    ...diagnostics,
    ...(importance ? { importance } : {}),
    ...(ranked ? { ranking: ranked.ranking } : {}),
  };
  return {
    report,
    scores,
    labels: dataset.labels,
    ...(ranked ? { groupNdcg10: ranked.groupNdcg10 } : {}),
  };
}

/** Group key per row from a column of the data; a column named by the user must exist. */
function groupKeys(dataset: Dataset, column: string, named: boolean): string[] | null {
  if (!(column in dataset.rows[0]!)) {
    if (named) throw new Error(`--gauc-by: the data has no column "${column}"`);
    return null;
  }
  return dataset.rows.map((r) => String(r[column] ?? ""));
}

/** The ranking report, and each group's NDCG@10 (groupRows order; NaN: a group without gains). */
function rankingQuality(
  model: ServedModel,
  dataset: Dataset,
  scores: Record<string, Float32Array>,
): { ranking: NonNullable<EvaluationReport["ranking"]>; groupNdcg10: Float64Array } {
  const n = dataset.rows.length;
  const { weights, mode } = model.manifest.fusion.defaults;
  const fused = fuseHeads(scores, weights, mode, n);
  const groups = [...groupRows(dataset.groups!).values()];
  const inputOrder = new Float64Array(n); // all ties: rows keep file order
  const gainsOf = (values: Record<string, ArrayLike<number>>) => {
    const gains = new Float64Array(n);
    for (const [head, w] of Object.entries(weights)) {
      const v = values[head];
      // A missing label (a masked task) gains nothing: the row is not known to be a hit.
      if (v) for (let i = 0; i < n; i++) gains[i]! += Number.isNaN(v[i]!) ? 0 : w * v[i]!;
    }
    return gains;
  };
  const labelGains = gainsOf(dataset.labels);
  const hasTruth = Object.keys(weights).every((h) => dataset.truth[h] || !(weights[h] ?? 0));
  const truthGains = hasTruth && Object.keys(dataset.truth).length > 0 ? gainsOf(dataset.truth) : null;
  const groupNdcg10 = groupNdcgs(fused, labelGains, groups, 10);
  const ranking = {
    groups: groupNdcg10.filter((g) => !Number.isNaN(g)).length,
    ndcg10: meanOfDefined(groupNdcg10),
    inputNdcg10: meanNdcg(inputOrder, labelGains, groups, 10),
    ...(truthGains
      ? {
          oracleNdcg10: meanNdcg(fused, truthGains, groups, 10),
          inputOracleNdcg10: meanNdcg(inputOrder, truthGains, groups, 10),
        }
      : {}),
  };
  return { ranking, groupNdcg10 };
}
