/**
 * Every per-task number of a head from its labels and outputs: what `evaluate` prints, the
 * report tabulates, and (one call) what training could log per epoch.
 */
import type { TaskMetrics } from "../../shared/manifest.ts";
import { auc, logloss, mean, meanAbsoluteError, meanSquaredError } from "../core/metrics.ts";
import {
  type CalibrationBin,
  type CalibrationOptions,
  calibrationCurve,
  expectedCalibrationError,
  predictedObservedRatio,
} from "./calibration.ts";
import { groupAuc } from "./group-auc.ts";
import { onlyLabelled } from "./labelled-rows.ts";
import { thresholdMetrics } from "./threshold.ts";

export interface HeadOutputs {
  name: string;
  type: "binary" | "regression";
  /** Regression: the transform labels were trained under; outputs (label units) are mapped back. */
  transform?: "none" | "log1p";
}

export interface TaskMetricOptions {
  threshold?: number;
  /** Group key per row (user or request) for GAUC; none: no GAUC. */
  groups?: readonly string[] | null;
  /** ECE bins; the reliability curve uses the same. */
  calibration?: CalibrationOptions;
}

export interface TaskEvaluation {
  metrics: TaskMetrics;
  /** Binary heads only. */
  calibration?: CalibrationBin[];
}

/** Rows without a label (NaN, a masked task) are left out of every number; `count` is the rest. */
export function evaluateTask(
  head: HeadOutputs,
  allLabels: ArrayLike<number>,
  allOutputs: ArrayLike<number>,
  options: TaskMetricOptions = {},
): TaskEvaluation {
  if (allLabels.length !== allOutputs.length)
    throw new Error(`task ${head.name}: ${allLabels.length} labels but ${allOutputs.length} outputs`);
  const { labels, outputs, groups } = onlyLabelled({
    labels: allLabels,
    outputs: allOutputs,
    groups: options.groups,
  });
  if (head.type === "regression") {
    const values = transformedOutputs(head, outputs);
    const mse = meanSquaredError(labels, values);
    return {
      metrics: {
        mse,
        mae: meanAbsoluteError(labels, values),
        r2: explainedVariance(labels, mse),
        count: labels.length,
      },
    };
  }
  const at = thresholdMetrics(labels, outputs, options.threshold ?? 0.5);
  const calibration = calibrationCurve(labels, outputs, options.calibration);
  return {
    metrics: {
      auc: auc(labels, outputs),
      logloss: logloss(labels, outputs),
      positiveRate: mean(labels),
      count: labels.length,
      ...(groups ? { gauc: groupAuc(labels, outputs, groups) } : {}),
      accuracy: at.accuracy,
      precision: at.precision,
      recall: at.recall,
      f1: at.f1,
      ece: expectedCalibrationError(calibration),
      calibrationRatio: predictedObservedRatio(labels, outputs),
    },
    calibration,
  };
}

/** 1 − mse / variance of the labels; NaN when the labels do not vary (nothing to explain). */
function explainedVariance(labels: ArrayLike<number>, mse: number): number {
  const m = mean(labels);
  let sum = 0;
  for (let i = 0; i < labels.length; i++) sum += (labels[i]! - m) ** 2;
  const variance = sum / labels.length;
  return variance > 0 ? 1 - mse / variance : Number.NaN;
}

/** R² with a weight per row: 1 − Σ w·(y − v)² / Σ w·(y − ȳ)², ȳ the weighted mean; NaN without spread. */
export function weightedExplainedVariance(
  labels: ArrayLike<number>,
  values: ArrayLike<number>,
  weights: ArrayLike<number>,
): number {
  let total = 0;
  let sumY = 0;
  for (let i = 0; i < labels.length; i++) {
    total += weights[i]!;
    sumY += weights[i]! * labels[i]!;
  }
  const m = sumY / total;
  let residual = 0;
  let spread = 0;
  for (let i = 0; i < labels.length; i++) {
    residual += weights[i]! * (labels[i]! - values[i]!) ** 2;
    spread += weights[i]! * (labels[i]! - m) ** 2;
  }
  return spread > 0 ? 1 - residual / spread : Number.NaN;
}

/** A regression head's outputs (label units) on the scale its labels are scored on (log1p or as they are). */
export function transformedOutputs(head: HeadOutputs, outputs: ArrayLike<number>): ArrayLike<number> {
  return head.transform === "log1p"
    ? Array.from(outputs, (v) => Math.log1p(Math.max(v, -0.999999)))
    : outputs;
}
