/**
 * tfjs's Adam and Adagrad with a learning rate a schedule can change between steps (tfjs reads
 * the rate at every applyGradients, but keeps the field protected).
 */
import * as tf from "@tensorflow/tfjs";

export type OptimizerKind = "adam" | "adagrad";

export const OPTIMIZERS: readonly OptimizerKind[] = ["adam", "adagrad"];

/**
 * Each optimiser's default peak learning rate. Adagrad's accumulators start at 0.1 (tfjs's
 * default) and a batch-mean loss gives gradients of ~1e-3, so at Adam's rate Adagrad moves a
 * weight ~1e-5 a step and learns next to nothing in a run: MovieLens like 0.549 test AUC at
 * 0.002, 0.760 at 0.3, 0.784 at 1; census-like income 0.9403 at 0.3, 0.9438 at 1; Fertility and
 * Lending Club level with Adam at 1 (seed 42, mmoe, default flags otherwise).
 */
export const DEFAULT_LEARNING_RATES: Readonly<Record<OptimizerKind, number>> = { adam: 0.002, adagrad: 1 };

export interface ScheduledOptimizer {
  optimizer: tf.Optimizer;
  setLearningRate(lr: number): void;
  /** The accumulators (moments, bias-correction powers), for a checkpoint. */
  exportState(): OptimizerState;
  /** Puts a checkpoint's accumulators back (before the first step after resuming). */
  importState(state: OptimizerState): void;
}

export interface OptimizerState {
  slots: { name: string; shape: number[]; values: Float32Array }[];
  scalars: number[];
}

type Slot = { originalName: string; variable: tf.Variable };

/**
 * tfjs keeps the accumulators private and hands them out only through the async getWeights /
 * setWeights; the training loop is synchronous, so these views read the same fields directly
 * (names as in tfjs-core 4.22's adam_optimizer.js and adagrad_optimizer.js).
 */
interface AdamInternals {
  accumulatedFirstMoment: Slot[];
  accumulatedSecondMoment: Slot[];
  accBeta1: tf.Variable;
  accBeta2: tf.Variable;
  beta1: number;
  beta2: number;
}
interface AdagradInternals {
  accumulatedGrads: Slot[];
}

function exportSlots(slots: readonly Slot[]): OptimizerState["slots"] {
  return slots.map((s) => ({
    name: s.originalName,
    shape: s.variable.shape,
    values: Float32Array.from(s.variable.dataSync() as Float32Array),
  }));
}

function importSlots(slots: OptimizerState["slots"]): Slot[] {
  return slots.map((s) => ({
    originalName: s.name,
    variable: tf.variable(tf.tensor(s.values, s.shape), false),
  }));
}

class ScheduledAdam extends tf.AdamOptimizer {
  setLearningRate(lr: number): void {
    this.learningRate = lr;
  }
  exportState(): OptimizerState {
    const self = this as unknown as AdamInternals;
    return {
      slots: exportSlots([...self.accumulatedFirstMoment, ...self.accumulatedSecondMoment]),
      scalars: [self.accBeta1.dataSync()[0]!, self.accBeta2.dataSync()[0]!],
    };
  }
  importState(state: OptimizerState): void {
    const self = this as unknown as AdamInternals;
    const slots = importSlots(state.slots);
    const half = slots.length / 2;
    self.accumulatedFirstMoment = slots.slice(0, half);
    self.accumulatedSecondMoment = slots.slice(half);
    tf.tidy(() => {
      self.accBeta1.assign(tf.scalar(state.scalars[0] ?? self.beta1));
      self.accBeta2.assign(tf.scalar(state.scalars[1] ?? self.beta2));
    });
  }
}

class ScheduledAdagrad extends tf.AdagradOptimizer {
  setLearningRate(lr: number): void {
    this.learningRate = lr;
  }
  exportState(): OptimizerState {
    return { slots: exportSlots((this as unknown as AdagradInternals).accumulatedGrads), scalars: [] };
  }
  importState(state: OptimizerState): void {
    (this as unknown as AdagradInternals).accumulatedGrads = importSlots(state.slots);
  }
}

export function denseOptimizer(kind: OptimizerKind, learningRate: number): ScheduledOptimizer {
  const optimizer =
    kind === "adagrad" ? new ScheduledAdagrad(learningRate) : new ScheduledAdam(learningRate, 0.9, 0.999);
  return {
    optimizer,
    setLearningRate: (lr) => optimizer.setLearningRate(lr),
    exportState: () => optimizer.exportState(),
    importState: (state) => optimizer.importState(state),
  };
}
