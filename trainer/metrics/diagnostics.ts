/**
 * Every head's metrics and calibration curve, the label correlation and the overall AUCs, from
 * labels and outputs alone: `evaluate` feeds it ONNX outputs, training can feed it the network's
 * validation outputs (then the report shows calibration without a separate evaluate run).
 */
import type { TaskMetrics } from "../../shared/manifest.ts";
import {
  type CalibrationBin,
  type CalibrationOptions,
  calibrationCurve,
  DEFAULT_CALIBRATION,
} from "./calibration.ts";
import { type CorrelationMatrix, labelCorrelation } from "./correlation.ts";
import { onlyLabelled } from "./labelled-rows.ts";
import { type OverallMetrics, overallMetrics } from "./summary.ts";
import {
  evaluateTask,
  type HeadOutputs,
  type TaskMetricOptions,
  transformedOutputs,
} from "./task-metrics.ts";

export interface TaskDiagnostics {
  threshold: number;
  calibrationBins: Required<CalibrationOptions>;
  tasks: Record<string, TaskMetrics>;
  /** Reliability-curve points per binary task, in the bins ECE was computed over. */
  calibration: Record<string, CalibrationBin[]>;
  /**
   * The same curve over equal-mass bins (each holds 1/bins of the rows), for plotting: with
   * equal-width bins a sparse task's rows crowd into the first bin and the plot shows one point.
   * A regression head's curve is the mean label against the mean prediction per equal-mass bin,
   * on the scale the labels are scored on (log1p units for a log1p head).
   */
  reliability: Record<string, CalibrationBin[]>;
  /** Pearson correlation of the evaluated tasks' labels. */
  correlation: CorrelationMatrix;
  /** Weighted (by `weights`, default 1 each) and harmonic mean of the binary tasks' AUCs. */
  overall: OverallMetrics;
}

/** Heads without labels are left out (a spec need not label every head). */
export function diagnoseTasks(
  heads: readonly HeadOutputs[],
  labels: Readonly<Record<string, ArrayLike<number>>>,
  outputs: Readonly<Record<string, ArrayLike<number>>>,
  options: TaskMetricOptions & { weights?: Readonly<Record<string, number>> } = {},
): TaskDiagnostics {
  const threshold = options.threshold ?? 0.5;
  const calibrationBins = { ...DEFAULT_CALIBRATION, ...options.calibration };
  const evaluated = heads.filter((h) => labels[h.name]);
  const tasks: TaskDiagnostics["tasks"] = {};
  const calibration: TaskDiagnostics["calibration"] = {};
  const reliability: TaskDiagnostics["reliability"] = {};
  for (const head of evaluated) {
    const out = outputs[head.name];
    if (!out) throw new Error(`task ${head.name}: no model output`);
    const result = evaluateTask(head, labels[head.name]!, out, {
      threshold,
      groups: options.groups ?? null,
      calibration: calibrationBins,
    });
    tasks[head.name] = result.metrics;
    if (head.type === "regression") {
      reliability[head.name] = massCurve(labels[head.name]!, transformedOutputs(head, out), calibrationBins);
      continue;
    }
    if (!result.calibration) continue;
    calibration[head.name] = result.calibration;
    reliability[head.name] =
      calibrationBins.binning === "mass"
        ? result.calibration
        : massCurve(labels[head.name]!, out, calibrationBins);
  }
  return {
    threshold,
    calibrationBins,
    tasks,
    calibration,
    reliability,
    correlation: labelCorrelation(Object.fromEntries(evaluated.map((h) => [h.name, labels[h.name]!]))),
    overall: overallMetrics(tasks, options.weights),
  };
}

/** The reliability curve with equal-count bins, over the rows with a label. */
function massCurve(
  allLabels: ArrayLike<number>,
  allOutputs: ArrayLike<number>,
  bins: CalibrationOptions,
): CalibrationBin[] {
  const { labels, outputs } = onlyLabelled({ labels: allLabels, outputs: allOutputs });
  return calibrationCurve(labels, outputs, { ...bins, binning: "mass" });
}
