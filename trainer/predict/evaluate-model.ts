/** `evaluate`: metrics of the exported model (run by onnxruntime) on a labelled data file. */
import type { TaskMetrics } from "../../shared/manifest.ts";
import type { DatasetSpec } from "../../shared/spec.ts";
import { loadDataset } from "../data/load-dataset.ts";
import { auc, logloss, mean, meanSquaredError } from "../train/metrics.ts";
import { type ServedModel, scoreRows } from "./served-model.ts";

export interface EvaluationReport {
  model: { id: string; version: string; file: string };
  rows: number;
  tasks: Record<string, TaskMetrics & { gauc?: number }>;
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
  return {
    model: { id: model.manifest.id, version: model.manifest.version, file: model.file },
    rows: dataset.rows.length,
    tasks,
  };
}

/** AUC within each group that has both classes, averaged with group sizes as weights (GAUC). */
export function groupAuc(labels: Float32Array, scores: Float32Array, groups: readonly string[]): number {
  const members = new Map<string, number[]>();
  groups.forEach((g, i) => {
    const list = members.get(g);
    if (list) list.push(i);
    else members.set(g, [i]);
  });
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
