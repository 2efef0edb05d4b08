/**
 * k-fold cross-validation: the same training run k times, each fold validating once (rows or,
 * with spec.group, whole groups dealt into folds by a seeded hash; the encoder is fitted on each
 * fold's training part only), reported as mean ± standard deviation per task metric.
 */
import type { TaskMetrics } from "../../shared/manifest.ts";
import { DivergenceError } from "../train/divergence.ts";
import { runTraining, type TrainCommand, type TrainSummary } from "./train-and-report.ts";

/** The per-task metrics summarised across folds. */
export const CV_METRICS = ["auc", "logloss", "ece", "accuracy", "mse", "mae", "r2"] as const;
export type CvMetric = (typeof CV_METRICS)[number];

export interface MeanStd {
  mean: number;
  std: number;
}

export interface CrossValidation {
  k: number;
  folds: {
    index: number;
    trainRows: number;
    validRows: number;
    bestEpoch: number;
    validation: Record<string, TaskMetrics>;
  }[];
  summary: Record<string, Partial<Record<CvMetric, MeanStd>>>;
}

export async function crossValidate(
  cmd: Omit<TrainCommand, "out" | "fold" | "validFraction" | "timeColumn">,
  k: number,
  onFold?: (index: number, summary: TrainSummary) => void,
): Promise<CrossValidation> {
  if (!Number.isInteger(k) || k < 2) throw new Error(`--folds: expected an integer >= 2, got ${k}`);
  const folds: CrossValidation["folds"] = [];
  for (let index = 0; index < k; index++) {
    // Calibration would be fitted on the very fold it is scored on, flattering ECE: folds report
    // the network's own outputs (AUC is the same either way).
    const summary = await runTraining({ calibration: "none", ...cmd, fold: { k, index } }).catch(
      (error: unknown) => {
        throw error instanceof DivergenceError
          ? error.within(`in cross-validation fold ${index + 1} of ${k}`)
          : error;
      },
    );
    onFold?.(index, summary);
    folds.push({
      index,
      trainRows: summary.trainRows,
      validRows: summary.validRows,
      bestEpoch: summary.bestEpoch,
      validation: summary.validation,
    });
  }
  return { k, folds, summary: summarise(folds.map((f) => f.validation)) };
}

export function summarise(runs: readonly Record<string, TaskMetrics>[]): CrossValidation["summary"] {
  const tasks = [...new Set(runs.flatMap((r) => Object.keys(r)))];
  return Object.fromEntries(
    tasks.map((task) => {
      const metrics: Partial<Record<CvMetric, MeanStd>> = {};
      for (const metric of CV_METRICS) {
        const values = runs.map((r) => r[task]?.[metric]).filter((x): x is number => Number.isFinite(x));
        if (values.length > 0) metrics[metric] = meanStd(values);
      }
      return [task, metrics];
    }),
  );
}

/** Mean and sample standard deviation (0 for a single value). */
export function meanStd(values: readonly number[]): MeanStd {
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const variance =
    values.length > 1 ? values.reduce((a, b) => a + (b - mean) ** 2, 0) / (values.length - 1) : 0;
  return { mean, std: Math.sqrt(variance) };
}
