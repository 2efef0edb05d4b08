/** `evaluate`: metrics of the exported model (run by onnxruntime) on a labelled data file. */

import { fuseHeads } from "../../shared/fusion.ts";
import type { TaskMetrics } from "../../shared/manifest.ts";
import type { DatasetSpec } from "../../shared/spec.ts";
import { type Dataset, loadDataset } from "../data/load-dataset.ts";
import { auc, logloss, mean, meanNdcg, meanSquaredError } from "../train/metrics.ts";
import { type ServedModel, scoreRows } from "./served-model.ts";

export interface EvaluationReport {
  model: { id: string; version: string; file: string };
  rows: number;
  tasks: Record<string, TaskMetrics & { gauc?: number; oracleAuc?: number }>;
  /**
   * Ranking within groups (spec.group) by the fused score with the manifest's default weights,
   * NDCG@10 with gains Σ w·label; `oracle*` use the true probabilities instead (simulated data
   * with spec.truth). `input*` rank by the file's row order: the do-nothing baseline.
   */
  ranking?: {
    groups: number;
    ndcg10: number;
    inputNdcg10: number;
    oracleNdcg10?: number;
    inputOracleNdcg10?: number;
  };
}

export async function evaluateModel(
  model: ServedModel,
  data: string,
  spec: DatasetSpec,
): Promise<EvaluationReport> {
  const dataset = await loadDataset(data, spec);
  const scores = await scoreRows(model, dataset.rows);
  const tasks: EvaluationReport["tasks"] = {};
  for (const head of model.manifest.heads) {
    const labels = dataset.labels[head.name];
    if (!labels) continue; // a head without a label column in this spec is not evaluated
    const p = scores[head.name]!;
    if (head.type === "binary") {
      tasks[head.name] = {
        auc: auc(labels, p),
        logloss: logloss(labels, p),
        positiveRate: mean(labels),
        count: labels.length,
        ...(dataset.groups ? { gauc: groupAuc(labels, p, dataset.groups) } : {}),
      };
    } else {
      const values = head.transform === "log1p" ? p.map((v) => Math.log1p(Math.max(v, -0.999999))) : p;
      tasks[head.name] = { mse: meanSquaredError(labels, values), count: labels.length };
    }
  }
  for (const [task, truth] of Object.entries(dataset.truth)) {
    const labels = dataset.labels[task];
    if (tasks[task] && labels) tasks[task]!.oracleAuc = auc(labels, truth);
  }
  return {
    model: { id: model.manifest.id, version: model.manifest.version, file: model.file },
    rows: dataset.rows.length,
    tasks,
    ...(dataset.groups ? { ranking: rankingQuality(model, dataset, scores) } : {}),
  };
}

function rankingQuality(
  model: ServedModel,
  dataset: Dataset,
  scores: Record<string, Float32Array>,
): NonNullable<EvaluationReport["ranking"]> {
  const n = dataset.rows.length;
  const { weights, mode } = model.manifest.fusion.defaults;
  const fused = fuseHeads(scores, weights, mode, n);
  const groups = [...groupRows(dataset.groups!).values()];
  const inputOrder = new Float64Array(n); // all ties: rows keep file order
  const gainsOf = (values: Record<string, ArrayLike<number>>) => {
    const gains = new Float64Array(n);
    for (const [head, w] of Object.entries(weights)) {
      const v = values[head];
      if (v) for (let i = 0; i < n; i++) gains[i]! += w * v[i]!;
    }
    return gains;
  };
  const labelGains = gainsOf(dataset.labels);
  const hasTruth = Object.keys(weights).every((h) => dataset.truth[h] || !(weights[h] ?? 0));
  const truthGains = hasTruth && Object.keys(dataset.truth).length > 0 ? gainsOf(dataset.truth) : null;
  return {
    groups: groups.length,
    ndcg10: meanNdcg(fused, labelGains, groups, 10),
    inputNdcg10: meanNdcg(inputOrder, labelGains, groups, 10),
    ...(truthGains
      ? {
          oracleNdcg10: meanNdcg(fused, truthGains, groups, 10),
          inputOracleNdcg10: meanNdcg(inputOrder, truthGains, groups, 10),
        }
      : {}),
  };
}

function groupRows(groups: readonly string[]): Map<string, number[]> {
  const members = new Map<string, number[]>();
  groups.forEach((g, i) => {
    const list = members.get(g);
    if (list) list.push(i);
    else members.set(g, [i]);
  });
  return members;
}

/** AUC within each group that has both classes, averaged with group sizes as weights (GAUC). */
export function groupAuc(labels: Float32Array, scores: Float32Array, groups: readonly string[]): number {
  const members = groupRows(groups);
  let weighted = 0;
  let weight = 0;
  for (const idx of members.values()) {
    const value = auc(
      idx.map((i) => labels[i]!),
      idx.map((i) => scores[i]!),
    );
    if (Number.isNaN(value)) continue;
    weighted += value * idx.length;
    weight += idx.length;
  }
  return weight > 0 ? weighted / weight : Number.NaN;
}
