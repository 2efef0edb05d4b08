/**
 * tfjs's Adam and Adagrad with a learning rate a schedule can change between steps (tfjs reads
 * the rate at every applyGradients, but keeps the field protected).
 */
import * as tf from "@tensorflow/tfjs";

export type OptimizerKind = "adam" | "adagrad";

export const OPTIMIZERS: readonly OptimizerKind[] = ["adam", "adagrad"];

export interface ScheduledOptimizer {
  optimizer: tf.Optimizer;
  setLearningRate(lr: number): void;
}

class ScheduledAdam extends tf.AdamOptimizer {
  setLearningRate(lr: number): void {
    this.learningRate = lr;
  }
}

class ScheduledAdagrad extends tf.AdagradOptimizer {
  setLearningRate(lr: number): void {
    this.learningRate = lr;
  }
}

export function denseOptimizer(kind: OptimizerKind, learningRate: number): ScheduledOptimizer {
  const optimizer =
    kind === "adagrad" ? new ScheduledAdagrad(learningRate) : new ScheduledAdam(learningRate, 0.9, 0.999);
  return { optimizer, setLearningRate: (lr) => optimizer.setLearningRate(lr) };
}
