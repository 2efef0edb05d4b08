/**
 * Fine-tuning from saved weights: the trainer's own loop (train-network.ts) started from them,
 * a few epochs at a constant learning rate, a hook after every step (pruning re-applies its mask
 * there), and the best epoch's weights kept — or the starting ones, if no epoch beat them.
 */
import * as tf from "@tensorflow/tfjs";
import type { TaskMetrics } from "../../shared/manifest.ts";
import { type NetworkConfig, readWeights } from "../models/network.ts";
import type { Params, Weights } from "../models/types.ts";
import {
  evaluateHeads,
  type LabelledBatch,
  predictNetwork,
  type TrainOptions,
  trainNetworkAsync,
} from "../train/train-network.ts";

export interface FineTuneOptions
  extends Pick<TrainOptions, "batchSize" | "learningRate" | "seed" | "taskWeights" | "embeddingUpdates"> {
  epochs: number;
  /** Called after every optimiser step (and once before the first). */
  afterStep?: (params: Params) => void;
  onEpoch?: (log: FineTuneLog) => void;
}

/** One fine-tuning epoch (the shape of the trained model's history entries). */
export interface FineTuneLog {
  epoch: number;
  trainLoss: number;
  validation: Record<string, TaskMetrics>;
  score: number;
  seconds: number;
}

export interface FineTuneResult {
  weights: Weights;
  history: FineTuneLog[];
  /** 0 when no fine-tuned epoch beat the starting weights. */
  bestEpoch: number;
  validation: Record<string, TaskMetrics>;
}

export async function fineTune(
  config: NetworkConfig,
  start: Weights,
  train: LabelledBatch,
  valid: LabelledBatch,
  options: FineTuneOptions,
): Promise<FineTuneResult> {
  const result = await trainNetworkAsync(config, train, valid, {
    ...options,
    initialize: (params) => {
      tf.tidy(() => {
        for (const [name, w] of Object.entries(start)) params[name]!.assign(tf.tensor(w.values, w.shape));
      });
    },
    keepStart: true,
    schedule: "constant",
    // Every epoch runs; the best (or the start) is kept. The trainer's default score: mean AUC
    // over binary heads (−MSE without any).
    patience: options.epochs,
    earlyStop: "auc",
    ...(options.onEpoch ? { onEpoch: options.onEpoch } : {}),
  });
  const weights = readWeights(result.params);
  tf.dispose(Object.values(result.params));
  return {
    weights,
    history: result.history.map(({ epoch, trainLoss, validation, score, seconds }) => ({
      epoch,
      trainLoss,
      validation,
      score,
      seconds,
    })),
    bestEpoch: result.bestEpoch,
    validation: result.validation,
  };
}

/** Validation metrics of saved weights (plain tensors: no variable names to collide with). */
export function evaluateWeights(
  config: NetworkConfig,
  weights: Weights,
  valid: LabelledBatch,
): Record<string, TaskMetrics> {
  const params = tensorParams(weights);
  try {
    return evaluateHeads(config, valid, predictNetwork(params, config, valid));
  } finally {
    tf.dispose(Object.values(params));
  }
}

/**
 * Saved weights as read-only tensors in the variables' places: the forward pass only reads them,
 * and unlike variables they do not claim the parameter names in tfjs's registry.
 */
export function tensorParams(weights: Weights): Params {
  return Object.fromEntries(
    Object.entries(weights).map(([name, w]) => [name, tf.tensor(w.values, w.shape) as tf.Variable]),
  );
}
