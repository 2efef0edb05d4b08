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
import { fitPlatt, logitsOf } from "./platt-scaling.ts";
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
  const binary = config.heads.filter((h) => h.type === "binary");
  if (kind === "none" || binary.length === 0 || valid.rows === 0) return {};
  for (const head of binary) delete head.calibration;
  const raw = predictNetwork(params, config, valid);
  const before = evaluateHeads(config, valid, raw);
  for (const head of binary) {
    const { labels, outputs } = onlyLabelled({ labels: valid.labels[head.name]!, outputs: raw[head.name]! });
    head.calibration = fitPlatt(labels, logitsOf(outputs));
  }
  const predictions = predictNetwork(params, config, valid);
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
