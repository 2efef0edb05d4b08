/**
 * Fine-tuning from saved weights (train-network.ts always starts from a fresh init): a few epochs
 * at a constant, small learning rate with the same optimiser as training, a hook after every
 * step (pruning re-applies its mask there), validation after each epoch, and the best epoch's
 * weights kept.
 */
import * as tf from "@tensorflow/tfjs";
import type { TaskMetrics } from "../../shared/manifest.ts";
import { type NetworkConfig, readWeights } from "../models/network.ts";
import type { Params, Weights } from "../models/types.ts";
import { validationScore } from "../train/early-stopping.ts";
import { seededRandom, shuffled } from "../train/shuffle.ts";
import {
  createNetworkOptimizer,
  evaluateHeads,
  type LabelledBatch,
  predictNetwork,
  type TrainOptions,
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

export function fineTune(
  config: NetworkConfig,
  start: Weights,
  train: LabelledBatch,
  valid: LabelledBatch,
  options: FineTuneOptions,
): FineTuneResult {
  // Trainable variables under the saved names (paramsFromWeights makes them non-trainable).
  const params: Params = Object.fromEntries(
    Object.entries(start).map(([name, w]) => [name, tf.variable(tf.tensor(w.values, w.shape), true, name)]),
  );
  // The trainer's default early-stopping score: mean AUC over binary heads (−MSE without any).
  const score = validationScore("auc", config.heads);
  try {
    options.afterStep?.(params);
    const first = evaluateHeads(config, valid, predictNetwork(params, config, valid));
    let best = { epoch: 0, score: score(first), weights: readWeights(params), validation: first };
    const optimizer = createNetworkOptimizer(params, config, options);
    optimizer.setLearningRate(options.learningRate);
    const history: FineTuneLog[] = [];
    const random = seededRandom(options.seed);
    for (let epoch = 1; epoch <= options.epochs; epoch++) {
      const started = performance.now();
      const order = shuffled(train.rows, random);
      let lossSum = 0;
      let batches = 0;
      for (let at = 0; at < order.length; at += options.batchSize) {
        lossSum += optimizer.step(train, order.subarray(at, at + options.batchSize)).total;
        options.afterStep?.(params);
        batches++;
      }
      optimizer.sync();
      options.afterStep?.(params);
      const validation = evaluateHeads(config, valid, predictNetwork(params, config, valid));
      const log: FineTuneLog = {
        epoch,
        trainLoss: lossSum / Math.max(1, batches),
        validation,
        score: score(validation),
        seconds: (performance.now() - started) / 1000,
      };
      history.push(log);
      options.onEpoch?.(log);
      if (log.score > best.score)
        best = { epoch, score: log.score, weights: readWeights(params), validation };
    }
    optimizer.dispose();
    return { weights: best.weights, history, bestEpoch: best.epoch, validation: best.validation };
  } finally {
    tf.dispose(Object.values(params));
  }
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
