/**
 * The training arguments: what a user chooses about one training run, each field documented
 * once here, every default in DEFAULT_TRAIN_ARGS, resolved once by resolveTrainArgs (in the
 * manner of tfjs-layers' layer args). The `train` and `cv` flags (their help quotes these
 * defaults), the library's TrainCommand (../workflows/train-and-report.ts) and pipeline.json's
 * "training" section (../pipeline/config.ts) all name these fields.
 */
import type { WeightingKind } from "../artifact/trained-model.ts";
import type { ArchOptions } from "../models/types.ts";
import { DEFAULT_L2, type L2Penalty } from "./batch-gradients.ts";
import type { CalibrationKind } from "./calibrate-heads.ts";
import { DEFAULT_LEARNING_RATES, type OptimizerKind } from "./dense-optimizer.ts";
import type { ScheduleKind } from "./schedule.ts";
import { DEFAULT_TRAIN_OPTIONS } from "./train-network.ts";

/** The embedding table's optimiser choices: one of the optimisers, or auto (by feature). */
export type EmbeddingOptimizerKind = "auto" | OptimizerKind;

export const EMBEDDING_OPTIMIZERS: readonly EmbeddingOptimizerKind[] = ["auto", "adam", "adagrad"];

export interface TrainArgs {
  /** The architecture (../models/registry.ts). */
  arch?: string;
  /** Layer sizes and expert counts over DEFAULT_ARCH_OPTIONS (each architecture reads its own). */
  options?: Partial<ArchOptions>;
  /**
   * The most epochs; early stopping may end sooner. Default: the step budget (./step-budget.ts),
   * 6, more on small files (at least 600 steps, at most 40 epochs).
   */
  epochs?: number;
  /** Mini-batch size. Default: the step budget, 512; on small files down to 64. */
  batchSize?: number;
  /** Seeds the initial weights, the split and the batch order. */
  seed?: number;
  /**
   * Fraction of rows (or groups, with spec.group) held out for validation. Default: 2,000 rows'
   * worth, between 3 % and 10 % of the file (../data/split.ts defaultValidFraction).
   */
  validFraction?: number;
  /** Validate on the latest rows by this column (numbers or dates) instead of a random split. */
  timeColumn?: string;
  /** Bad rows to skip and count before stopping (0: stop at the first). */
  maxBadRows?: number;
  /** Loss weight per task over the spec's (task name -> weight). */
  taskWeights?: Record<string, number>;
  /** How task losses combine (./task-weighting.ts): static, uncertainty or dwa. */
  taskWeighting?: WeightingKind;
  /** Weight of a listwise ranking loss within groups (0: off; needs spec.group). */
  rankingLoss?: number;
  /** Binary heads' calibration fitted on validation after training (./calibrate-heads.ts). */
  calibration?: CalibrationKind;
  /** Embedding size for categorical features and buckets. */
  embeddingDim?: number;
  /** The peak learning rate (the schedule warms up to it and decays from it). */
  learningRate?: number;
  /** The dense parameters' optimiser. */
  optimizer?: OptimizerKind;
  /**
   * The embedding table's optimiser, on the rows each batch reads: "auto" (sparse Adagrad for the
   * rows of id-like features, ./embedding-rules.ts, beside Adam; with `optimizer` adagrad,
   * Adagrad for all), "adam" (lazy Adam) or "adagrad".
   */
  embeddingOptimizer?: EmbeddingOptimizerKind;
  /** The embedding table's peak learning rate. Default: defaultEmbeddingLearningRate. */
  embeddingLearningRate?: number;
  /** The learning-rate schedule (./schedule.ts). */
  schedule?: ScheduleKind;
  /** The tfjs backend: one of ./backend.ts BACKEND_CHOICES (auto: the fastest present). */
  backend?: string;
  /** The validation metric early stopping maximises (./early-stopping.ts). */
  earlyStop?: string;
  /** Epochs without a better validation score before stopping. */
  patience?: number;
  /** L2 penalty on the embedding rows a batch reads and on dense kernels: sets both. */
  l2?: number;
  /** L2 on the embedding rows alone (./batch-gradients.ts L2Penalty), over l2. */
  embeddingL2?: number;
  /** L2 on dense kernels alone, over l2. */
  kernelL2?: number;
  /**
   * Threads computing each batch's gradients (1: this thread only; ./parallel-optimizer.ts).
   * Default: 2 from 20,000 training rows and batches of 512 rows or more (the default batch from
   * ~24,600 rows), on a host with two cores or more, on the wasm or cpu backend, without a
   * ranking loss; else 1 (./step-budget.ts defaultWorkers).
   */
  workers?: number;
  /**
   * Networks averaged into the served one (./fold-average.ts): the rows (or groups) are dealt
   * into k folds, network f trains on the others and stops early on fold f, all from the same
   * start, and the served weights are their mean; `validFraction` is then not used. 1: one
   * network on a held-out validation part. Default: FOLD_AVERAGE_K under FOLD_AVERAGE_ROWS rows
   * with a random or group split, else 1 (./fold-average.ts defaultAverageFolds).
   */
  averageFolds?: number;
  /**
   * Id dropout (./id-dropout.ts): id-like feature name -> the share of each epoch's rows that read
   * it as a value never seen, so the network learns to rank a new item (or user) by its other
   * features. Default: none. Costs the known ids a little: see docs/models.md.
   */
  idDropout?: Record<string, number>;
}

/** Every field, in the order above: what a caller's object is read for. */
export const TRAIN_ARG_KEYS = [
  "arch",
  "options",
  "epochs",
  "batchSize",
  "seed",
  "validFraction",
  "timeColumn",
  "maxBadRows",
  "taskWeights",
  "taskWeighting",
  "rankingLoss",
  "calibration",
  "embeddingDim",
  "learningRate",
  "optimizer",
  "embeddingOptimizer",
  "embeddingLearningRate",
  "schedule",
  "backend",
  "earlyStop",
  "patience",
  "l2",
  "embeddingL2",
  "kernelL2",
  "workers",
  "averageFolds",
  "idDropout",
] as const satisfies readonly (keyof TrainArgs)[];

/** The fields that are optional even resolved: the step budget, or nothing, stands in for them. */
type Unresolved =
  | "validFraction"
  | "epochs"
  | "batchSize"
  | "timeColumn"
  | "taskWeights"
  | "workers"
  | "embeddingLearningRate"
  | "averageFolds";

/** Arguments with every default applied; `l2` as the pair the optimiser takes. */
export type ResolvedTrainArgs = Required<Omit<TrainArgs, Unresolved | "l2" | "embeddingL2" | "kernelL2">> &
  Pick<TrainArgs, Unresolved> & { l2: L2Penalty };

/** The defaults, in one place. */
export const DEFAULT_TRAIN_ARGS = {
  arch: "shared-bottom",
  options: {},
  seed: DEFAULT_TRAIN_OPTIONS.seed,
  maxBadRows: 0,
  taskWeighting: "static",
  rankingLoss: 0,
  calibration: "platt",
  embeddingDim: 8,
  learningRate: DEFAULT_TRAIN_OPTIONS.learningRate,
  optimizer: "adam",
  embeddingOptimizer: "auto",
  schedule: "cosine",
  backend: "auto",
  earlyStop: "auto",
  patience: DEFAULT_TRAIN_OPTIONS.patience,
  embeddingL2: DEFAULT_L2.embedding,
  kernelL2: DEFAULT_L2.kernel,
  idDropout: {},
} as const satisfies TrainArgs;

/** The training arguments among `values` (a CLI's parsed flags, a config section) that are set. */
export function pickTrainArgs(values: Readonly<Record<string, unknown>>): TrainArgs {
  const args: Record<string, unknown> = {};
  for (const key of TRAIN_ARG_KEYS) if (values[key] !== undefined) args[key] = values[key];
  return args as TrainArgs;
}

export function resolveTrainArgs(given: TrainArgs): ResolvedTrainArgs {
  const d = DEFAULT_TRAIN_ARGS;
  return {
    arch: given.arch ?? d.arch,
    options: given.options ?? d.options,
    ...(given.epochs !== undefined ? { epochs: given.epochs } : {}),
    ...(given.batchSize !== undefined ? { batchSize: given.batchSize } : {}),
    seed: given.seed ?? d.seed,
    ...(given.validFraction !== undefined ? { validFraction: given.validFraction } : {}),
    ...(given.timeColumn !== undefined ? { timeColumn: given.timeColumn } : {}),
    maxBadRows: given.maxBadRows ?? d.maxBadRows,
    ...(given.taskWeights !== undefined ? { taskWeights: given.taskWeights } : {}),
    taskWeighting: given.taskWeighting ?? d.taskWeighting,
    rankingLoss: given.rankingLoss ?? d.rankingLoss,
    calibration: given.calibration ?? d.calibration,
    embeddingDim: given.embeddingDim ?? d.embeddingDim,
    learningRate: given.learningRate ?? DEFAULT_LEARNING_RATES[given.optimizer ?? d.optimizer],
    optimizer: given.optimizer ?? d.optimizer,
    embeddingOptimizer: given.embeddingOptimizer ?? d.embeddingOptimizer,
    ...(given.embeddingLearningRate !== undefined
      ? { embeddingLearningRate: given.embeddingLearningRate }
      : {}),
    schedule: given.schedule ?? d.schedule,
    backend: given.backend ?? d.backend,
    earlyStop: given.earlyStop ?? d.earlyStop,
    patience: given.patience ?? d.patience,
    l2: {
      embedding: given.embeddingL2 ?? given.l2 ?? d.embeddingL2,
      kernel: given.kernelL2 ?? given.l2 ?? d.kernelL2,
    },
    ...(given.workers !== undefined ? { workers: given.workers } : {}),
    idDropout: given.idDropout ?? d.idDropout,
    ...(given.averageFolds !== undefined ? { averageFolds: given.averageFolds } : {}),
  };
}

/**
 * The embedding table's peak learning rate when none is given: the dense layers' rate when both
 * use one optimiser; sparse Adagrad beside Adam at 0.5 for batches of 512 rows, in proportion to
 * the batch (a smaller batch's gradient of a row is larger, and Adagrad's first steps are the
 * gradient over √0.1); lazy Adam beside Adagrad at Adam's default rate.
 */
export function defaultEmbeddingLearningRate(
  embeddingOptimizer: OptimizerKind,
  batchSize: number,
  optimizer: OptimizerKind,
  learningRate: number,
): number {
  if (embeddingOptimizer === optimizer) return learningRate;
  return embeddingOptimizer === "adagrad" ? (0.5 * batchSize) / 512 : DEFAULT_LEARNING_RATES.adam;
}
