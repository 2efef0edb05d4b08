/**
 * Two models scored on the same labelled rows: per binary task, the first's AUC minus the
 * second's, with an interval from a paired bootstrap over the rows (../metrics/paired-auc.ts).
 * Both models score the same resampled rows, so the interval measures their difference alone; a
 * few thousandths apart on a few thousand rows is usually inside it, and the interval is what
 * says whether a new model is better or only measured so.
 */
import { keptRows, type PairedAucOptions, pairedAucDifference } from "../metrics/paired-auc.ts";
import type { ScoredEvaluation } from "./evaluate-model.ts";

export interface TaskComparison {
  /** AUC of the evaluated model, and of the model it is compared with, on the same rows. */
  auc: number;
  againstAuc: number;
  /** auc − againstAuc, and its interval's ends. */
  difference: number;
  low: number;
  high: number;
  /** Share of resamples in which the evaluated model's AUC was not above the other's. */
  notAbove: number;
  /** Labelled rows the AUCs are over. */
  rows: number;
}

export interface Comparison {
  against: { id: string; version: string; file: string };
  /** Two-sided level of the intervals, and the resamples behind them. */
  level: number;
  resamples: number;
  tasks: Record<string, TaskComparison>;
  /** Binary tasks of the evaluated model left out, and why. */
  skipped: { task: string; why: string }[];
}

/** `model` against `against`, both scored on the same rows (evaluateWithScores on one dataset). */
export function compareScored(
  model: ScoredEvaluation,
  against: ScoredEvaluation,
  options: PairedAucOptions = {},
): Comparison {
  const { level = 0.95, resamples = 1000, seed = 0 } = options;
  if (model.report.rows !== against.report.rows)
    throw new Error(
      `compare: the models scored ${model.report.rows} and ${against.report.rows} rows; they must score the same file`,
    );
  const tasks: Record<string, TaskComparison> = {};
  const skipped: Comparison["skipped"] = [];
  for (const [task, metrics] of Object.entries(model.report.tasks)) {
    if (metrics.auc === undefined) continue; // regression heads: no AUC to compare
    const labels = model.labels[task];
    const mine = model.scores[task];
    const theirs = against.scores[task];
    const theirAuc = against.report.tasks[task]?.auc;
    if (!labels || !mine) continue;
    if (!theirs || theirAuc === undefined) {
      skipped.push({ task, why: "the other model has no such binary head" });
      continue;
    }
    if (!Number.isFinite(metrics.auc) || !Number.isFinite(theirAuc)) {
      skipped.push({ task, why: "AUC is undefined on these rows (one class only)" });
      continue;
    }
    const d = pairedAucDifference(labels, [mine], [theirs], { level, resamples, seed });
    tasks[task] = {
      auc: metrics.auc,
      againstAuc: theirAuc,
      difference: d.difference,
      low: d.low,
      high: d.high,
      notAbove: d.notAbove,
      rows: keptRows(labels).length,
    };
  }
  return { against: against.report.model, level, resamples, tasks, skipped };
}
