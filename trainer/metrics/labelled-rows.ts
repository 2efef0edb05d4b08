/**
 * The rows a task's metrics read: a task whose spec masks missing labels (`missingLabel: "mask"`)
 * holds NaN where a row has no label, and every metric of that task leaves such rows out.
 */
import { auc } from "../core/metrics.ts";

/** Indices of the rows with a label; null when every row has one (nothing to drop). */
export function labelledRows(labels: ArrayLike<number>): number[] | null {
  const rows: number[] = [];
  for (let i = 0; i < labels.length; i++) if (!Number.isNaN(labels[i]!)) rows.push(i);
  return rows.length === labels.length ? null : rows;
}

export interface LabelledColumns {
  labels: ArrayLike<number>;
  /** Predictions (or any number per row) beside the labels. */
  outputs: ArrayLike<number>;
  /** Group key per row, when the metric has groups. */
  groups?: readonly string[] | null | undefined;
}

/** The labels and the columns beside them, cut to the rows with a label (as given if all have one). */
export function onlyLabelled(columns: LabelledColumns): LabelledColumns {
  const rows = labelledRows(columns.labels);
  if (!rows) return columns;
  const { labels, outputs, groups } = columns;
  return {
    labels: rows.map((i) => labels[i]!),
    outputs: rows.map((i) => outputs[i]!),
    ...(groups ? { groups: rows.map((i) => groups[i]!) } : {}),
  };
}

/** AUC over the rows with a label. */
export function labelledAuc(labels: ArrayLike<number>, scores: ArrayLike<number>): number {
  const cut = onlyLabelled({ labels, outputs: scores });
  return auc(cut.labels, cut.outputs);
}
