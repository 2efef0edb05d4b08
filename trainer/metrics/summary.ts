/** One number across tasks, for choosing between models: weighted mean and harmonic mean of AUCs. */
import type { TaskMetrics } from "../../shared/manifest.ts";

export interface OverallMetrics {
  /** Σ w·AUC / Σ w over binary tasks with a finite AUC and a weight > 0. */
  weightedAuc: number;
  /**
   * n / Σ 1/AUC over the same tasks: pulled down by the weakest task, so a model cannot buy a
   * good mean by giving up the sparse one.
   */
  harmonicAuc: number;
  /** Tasks that entered both numbers (regression tasks and tasks without an AUC do not). */
  tasks: string[];
}

/** `weights` default to 1 per task; a task missing from a given `weights` map counts with 0. */
export function overallMetrics(
  metrics: Readonly<Record<string, TaskMetrics>>,
  weights?: Readonly<Record<string, number>>,
): OverallMetrics {
  let sumW = 0;
  let sumWAuc = 0;
  let sumInv = 0;
  const tasks: string[] = [];
  for (const [task, m] of Object.entries(metrics)) {
    const w = weights ? (weights[task] ?? 0) : 1;
    if (m.auc === undefined || !Number.isFinite(m.auc) || !(w > 0)) continue;
    sumW += w;
    sumWAuc += w * m.auc;
    sumInv += 1 / m.auc;
    tasks.push(task);
  }
  return {
    weightedAuc: sumW > 0 ? sumWAuc / sumW : Number.NaN,
    harmonicAuc: tasks.length > 0 ? tasks.length / sumInv : Number.NaN,
    tasks,
  };
}
