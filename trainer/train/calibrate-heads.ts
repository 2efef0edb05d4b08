/**
 * After training: each binary head's Platt scaling fitted on the validation rows
 * (./platt-scaling.ts), written into the network config so tfjs predictions and every exported
 * graph serve calibrated probabilities, and the validation metrics of the calibrated heads.
 */
import * as tf from "@tensorflow/tfjs";
import type { TaskMetrics } from "../../shared/manifest.ts";
import { onlyLabelled } from "../metrics/labelled-rows.ts";
import { type NetworkConfig, paramsFromWeights } from "../models/network.ts";
import type { Params, Weights } from "../models/types.ts";
import { applyPlatt, fitPlatt, logitsOf } from "./platt-scaling.ts";
import { evaluateHeads, type LabelledBatch, predictNetwork } from "./train-network.ts";

export const CALIBRATIONS = ["platt", "none"] as const;
export type CalibrationKind = (typeof CALIBRATIONS)[number];

export interface HeadCalibration {
  /** Per calibrated head: the fit and the validation ECE before and after it. */
  heads?: Record<string, { scale: number; shift: number; eceBefore: number; eceAfter: number }>;
  /** The validation metrics with the calibrated heads (absent: nothing was calibrated). */
  validation?: Record<string, TaskMetrics>;
  /** The calibrated network's validation outputs those metrics came from (for the report). */
  predictions?: Record<string, Float32Array>;
}

/** Fits and sets `config.heads[i].calibration` for every binary head (kind "platt"). */
export function calibrateHeads(
  kind: CalibrationKind,
  config: NetworkConfig,
  params: Params,
  valid: LabelledBatch,
): HeadCalibration {
  if (!calibrates(kind, config, valid)) return {};
  for (const head of config.heads) delete head.calibration;
  return calibrateOutputs(kind, config, valid, predictNetwork(params, config, valid));
}

/**
 * The same from the validation rows' uncalibrated outputs (`raw`, by head), however they were
 * computed: a run that averages fold networks fits on each row's output from the network that
 * did not train on it (./fold-average.ts).
 */
export function calibrateOutputs(
  kind: CalibrationKind,
  config: NetworkConfig,
  valid: LabelledBatch,
  raw: Readonly<Record<string, Float32Array>>,
): HeadCalibration {
  if (!calibrates(kind, config, valid)) return {};
  const binary = config.heads.filter((h) => h.type === "binary");
  const before = evaluateHeads(config, valid, raw);
  const predictions: Record<string, Float32Array> = { ...raw };
  for (const head of binary) {
    const logits = logitsOf(raw[head.name]!);
    const labelled = onlyLabelled({ labels: valid.labels[head.name]!, outputs: logits });
    head.calibration = fitPlatt(labelled.labels, labelled.outputs);
    predictions[head.name] = applyPlatt(head.calibration, logits);
  }
  const validation = evaluateHeads(config, valid, predictions);
  const heads = Object.fromEntries(
    binary.map((h) => [
      h.name,
      {
        ...h.calibration!,
        eceBefore: before[h.name]?.ece ?? Number.NaN,
        eceAfter: validation[h.name]?.ece ?? Number.NaN,
      },
    ]),
  );
  return { heads, validation, predictions };
}

function calibrates(kind: CalibrationKind, config: NetworkConfig, valid: LabelledBatch): boolean {
  return kind !== "none" && valid.rows > 0 && config.heads.some((h) => h.type === "binary");
}

/**
 * The same for saved weights (compressed models): a copy of `config` whose binary heads carry a
 * calibration fitted to these weights (any earlier calibration, e.g. the teacher's, dropped).
 */
export function calibrateWeights(
  config: NetworkConfig,
  weights: Weights,
  valid: LabelledBatch,
): { config: NetworkConfig } & HeadCalibration {
  const copy: NetworkConfig = { ...config, heads: uncalibrated(config.heads) };
  const params = paramsFromWeights(weights);
  try {
    return { config: copy, ...calibrateHeads("platt", copy, params, valid) };
  } finally {
    tf.dispose(Object.values(params));
  }
}

/** The heads without their calibration (a new network gets its own fit, not another's). */
export function uncalibrated(heads: NetworkConfig["heads"]): NetworkConfig["heads"] {
  return heads.map(({ calibration: _, ...h }) => h);
}
