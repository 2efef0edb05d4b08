/** The `train` verb: spec + data -> encoder, network, validation metrics, saved model directory. */
import { createHash } from "node:crypto";
import { stat } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { type EncoderState, embeddingPools } from "../../shared/encoder/state.ts";
import type { TaskMetrics } from "../../shared/manifest.ts";
import type { DatasetSpec } from "../../shared/spec.ts";
import { loadCheckpoint, removeCheckpoint, saveCheckpoint } from "../artifact/checkpoint.ts";
import {
  type FoldRun,
  loadTrainedModel,
  saveTrainedModel,
  type TrainedModel,
} from "../artifact/trained-model.ts";
import { writeAtomic } from "../core/write-atomic.ts";
import { type ErrorBudget, encodeDataset, type SplitPlan } from "../data/encode-dataset.ts";
import { countLines } from "../data/read-rows.ts";
import { readSpecFile } from "../data/read-spec.ts";
import { defaultValidFraction } from "../data/split.ts";
import { targetFolds } from "../data/target-folds.ts";
import { embeddingLayout, type NetworkConfig, paramsFromWeights, readWeights } from "../models/network.ts";
import { architecture } from "../models/registry.ts";
import type { Params, Weights } from "../models/types.ts";
import { type ReportDiagnostics, writeReport } from "../report/training-report.ts";
import { validationDiagnostics } from "../report/validation-diagnostics.ts";
import { selectBackend } from "../train/backend.ts";
import { calibrateHeads, calibrateOutputs, type HeadCalibration } from "../train/calibrate-heads.ts";
import { resolveEarlyStop, validationScore } from "../train/early-stopping.ts";
import { embeddingOptions } from "../train/embedding-rules.ts";
import { defaultAverageFolds, type FoldAverage, trainFoldAverage } from "../train/fold-average.ts";
import { idDropout } from "../train/id-dropout.ts";
import { layerWidths } from "../train/layer-widths.ts";
import {
  canStartWorkers,
  checkWorkers,
  prestartWorkers,
  stopSpareWorkers,
} from "../train/parallel-optimizer.ts";
import { defaultWorkers, MIN_PARALLEL_BATCH, PARALLEL_ROWS, stepBudget } from "../train/step-budget.ts";
import { scaleHeads } from "../train/target-scale.ts";
import { type ResolvedTrainArgs, resolveTrainArgs, type TrainArgs } from "../train/train-args.ts";
import {
  DivergenceError,
  type EpochLog,
  predictNetwork,
  type TrainingState,
  type TrainOptions,
  type TrainResult,
  trainNetworkAsync,
} from "../train/train-network.ts";
import { neutraliseUnreadRows, rowReads } from "../train/unread-rows.ts";
import { fitUnseenRows } from "../train/unseen-rows.ts";
import { carriedRows, type WarmStartReport, warmStart } from "../train/warm-start.ts";

/**
 * One training run: where the data and spec are, where the model goes, and the training
 * arguments (../train/train-args.ts, each documented there, defaults in DEFAULT_TRAIN_ARGS).
 */
export interface TrainCommand extends TrainArgs {
  data: string;
  spec: string;
  arch: string;
  /** Model directory to write; absent: train and evaluate only (cross-validation folds). */
  out?: string;
  /** Validate on fold `index` of k instead of a validFraction split. */
  fold?: { k: number; index: number };
  /** Start from this earlier model directory's weights (warm start). */
  initFrom?: string;
  /** Continue an interrupted run from out/checkpoint (written after every epoch). */
  resume?: boolean;
  onEpoch?: (log: EpochLog) => void;
  onBatch?: TrainOptions["onBatch"];
}

export interface TrainSummary {
  backend: string;
  trainRows: number;
  validRows: number;
  /** Categorical features hashed into 2^20 buckets: more distinct values than the encoder tracks. */
  hashed: string[];
  /** Numeric features without variation in the training rows (../data/encode-dataset.ts constantFeatures). */
  constant: string[];
  /** Per bag feature: values dropped past its maxValues, over training and validation rows. */
  dropped: Record<string, number>;
  /** Binary tasks with fewer than FEW_POSITIVES positive training rows, and how many they have. */
  fewPositives: Record<string, number>;
  /** Categorical features with a frequency column (id-like by default, or as the spec says). */
  frequency: string[];
  /** Categorical features with target columns (id-like by default, or as the spec says). */
  targetEncoded: string[];
  /** Id-like features whose unseen row was fitted (../train/unseen-rows.ts), and the seconds it took. */
  unseenFitted: { features: string[]; seconds: number };
  /** The criterion early stopping used, `auto` resolved for the validation part (../train/early-stopping.ts). */
  earlyStop: string;
  /** Bad rows skipped within the error budget (--max-bad-rows), and the first reasons. */
  rowsSkipped: number;
  skipped: string[];
  /** Per task that masks missing labels: rows kept for the other tasks without its label. */
  unlabelled: Record<string, number>;
  split: "random" | "group" | "time";
  /** The batch size, the most epochs and the threads per step the run had (../train/step-budget.ts when not given). */
  batchSize: number;
  maxEpochs: number;
  workers: number;
  /** With initFrom: what the earlier model's weights covered. */
  warmStart?: WarmStartReport;
  /** The best epoch (with fold networks: the mean of theirs, rounded). */
  bestEpoch: number;
  /** The fold networks averaged into the served one (./../train/fold-average.ts); absent: one network. */
  folds?: FoldRun[];
  /** Validation metrics: of the held-out part, or of every row's out-of-fold output. */
  validation: Record<string, TaskMetrics>;
  /** Binary heads' calibration and the validation ECE before and after it. */
  calibration?: HeadCalibration["heads"];
}

/**
 * Trains, and with `out` writes the model directory once training has succeeded. A run whose loss
 * goes non-finite throws a DivergenceError at that step (../train/divergence.ts), having written
 * nothing of a model: OUT keeps what it held before (no checkpoint of the failed run).
 */
export async function runTraining(cmd: TrainCommand): Promise<TrainSummary> {
  const args = resolveTrainArgs(cmd);
  const { spec, taskWeights, backend, previous } = await prepareRun(cmd, args);
  const host = {
    backend,
    rankingLoss: args.rankingLoss,
    cores: availableParallelism(),
    workerThreads: canStartWorkers(),
  };
  // The threads a large file would get: their workers load tfjs while the data is read, and
  // are stopped unless the run takes them.
  prestartWorkers(backend, (args.workers ?? defaultWorkers(PARALLEL_ROWS, MIN_PARALLEL_BATCH, host)) - 1);
  const { data, budget, config, result, warm, foldAverage } = await (async () => {
    const data = await splitData(cmd, args, spec);
    // Fold networks get the whole file's budget (each trains on (k - 1) / k of it).
    const budget = stepBudget(data.train.rows, args, host);
    const config = networkConfig(args, spec, data, previous);
    return {
      data,
      budget,
      config,
      ...(await fitNetwork(cmd, args, config, data, previous, taskWeights, budget)),
    };
  })().finally(stopSpareWorkers);
  const unseenFitted = settleEmbedding(result.params, config, data, previous, {
    taskWeights,
    seed: args.seed,
  });
  // The rows the run was validated on: the held-out part, or with fold networks every row, each
  // scored by the network that did not train on it.
  const held = foldAverage ? data.train : data.valid;
  const weights = readWeights(result.params);
  const calibration = foldAverage
    ? calibrateOutputs(args.calibration, config, held, foldAverage.outOfFold)
    : calibrateHeads(args.calibration, config, result.params, held);
  const validation = calibration.validation ?? result.validation;
  const trained = trainedModel(cmd, args, config, data, result, {
    weights,
    validation,
    calibration,
    taskWeights,
    backend,
    budget,
    ...(foldAverage ? { folds: foldAverage.folds } : {}),
  });
  const summary: TrainSummary = {
    backend,
    trainRows: data.train.rows,
    validRows: held.rows,
    rowsSkipped: data.counts.skipped,
    skipped: data.skipped,
    unlabelled: data.unlabelled,
    hashed: data.hashed,
    constant: data.constant,
    dropped: data.dropped,
    fewPositives: Object.fromEntries(Object.entries(data.positives).filter(([, n]) => n < FEW_POSITIVES)),
    frequency: data.encoder.features.flatMap((f) =>
      f.kind === "categorical" && f.frequency ? [f.name] : [],
    ),
    unseenFitted,
    targetEncoded: data.encoder.features.flatMap((f) =>
      f.kind === "categorical" && f.target ? [f.name] : [],
    ),
    earlyStop: resolveEarlyStop(
      args.earlyStop,
      foldAverage ? (foldAverage.folds[0]?.validRows ?? 0) : held.rows,
    ),
    split: data.split,
    batchSize: budget.batchSize,
    maxEpochs: budget.epochs,
    workers: budget.workers,
    bestEpoch: result.bestEpoch,
    ...(foldAverage ? { folds: foldAverage.folds } : {}),
    validation,
    ...(calibration.heads ? { calibration: calibration.heads } : {}),
    ...(warm ? { warmStart: warm } : {}),
  };
  if (cmd.out !== undefined)
    await writeModelDir(cmd.out, trained, spec, () =>
      validationDiagnostics(
        config.heads,
        held.labels,
        calibration.predictions ?? foldAverage?.outOfFold ?? predictNetwork(result.params, config, held),
        taskWeights,
        held.groups ? Array.from(held.groups, String) : null,
      ),
    );
  tf.dispose(Object.values(result.params));
  return summary;
}

/**
 * Everything that can fail without the data fails first (a bad --arch, task weight, --early-stop
 * or --workers); then the backend starts and the earlier model (--init-from) is read.
 */
async function prepareRun(cmd: TrainCommand, args: ResolvedTrainArgs) {
  architecture(args.arch);
  if (cmd.out !== undefined && (await stat(cmd.out).catch(() => undefined))?.isFile())
    throw new Error(`--out: ${cmd.out} is a file; name a model directory`);
  const spec = await readSpecFile(cmd.spec);
  const taskWeights = resolveTaskWeights(spec, args.taskWeights);
  validationScore(args.earlyStop, spec.tasks);
  if (args.workers !== undefined) checkWorkers(args.workers, args);
  const backend = await selectBackend(args.backend);
  const previous = cmd.initFrom !== undefined ? await loadTrainedModel(cmd.initFrom) : undefined;
  return { spec, taskWeights, backend, previous };
}

/** The encoded data, and the fold networks the run averages (1: one network, `valid` held out). */
type Data = Awaited<ReturnType<typeof encodeDataset>> & { averageFolds: number };

/**
 * The data read, checked, split and encoded (the encoder fitted on the training part). A run
 * that averages k fold networks encodes every row as training (the encoder fitted on all of
 * them, target columns out of the same k folds) and deals the folds itself; a small file is read
 * a second time when the first read shows it small.
 */
async function splitData(cmd: TrainCommand, args: ResolvedTrainArgs, spec: DatasetSpec): Promise<Data> {
  // The default share depends on the file's size, known before the split only by counting lines
  // (a pass over the raw bytes); fold networks and a cross-validation fold use no fraction.
  const validFraction =
    args.validFraction ??
    (cmd.fold || (args.averageFolds ?? 1) > 1 ? 0 : defaultValidFraction(await countLines(cmd.data)));
  const plan: SplitPlan = {
    validFraction,
    seed: args.seed,
    ...(args.timeColumn !== undefined ? { timeColumn: args.timeColumn } : {}),
    ...(cmd.fold ? { fold: cmd.fold } : {}),
  };
  const budget = { maxBadRows: args.maxBadRows };
  const given = args.averageFolds;
  if (given !== undefined && given > 1) {
    if (args.timeColumn !== undefined || cmd.fold)
      throw new Error(
        `--average-folds: fold networks validate on rows dealt at random; ${cmd.fold ? "a cross-validation fold" : "--time-column"} needs --average-folds 1`,
      );
    return foldData(cmd, plan, spec, budget, given);
  }
  const data = await encodeDataset(cmd.data, spec, plan, budget);
  const k =
    given ?? defaultAverageFolds(data.counts.train + data.counts.valid, data.split, cmd.fold !== undefined);
  if (k > 1) return foldData(cmd, plan, spec, budget, k);
  if (data.train.rows === 0 || data.valid.rows === 0) {
    throw new Error(
      `--valid-fraction: the ${data.split} split left ${data.train.rows} training and ${data.valid.rows} validation rows`,
    );
  }
  return { ...data, averageFolds: 1 };
}

async function foldData(
  cmd: TrainCommand,
  plan: SplitPlan,
  spec: DatasetSpec,
  budget: ErrorBudget,
  k: number,
): Promise<Data> {
  if (cmd.resume)
    throw new Error("--resume: a run of fold networks keeps no checkpoint (--average-folds 1 does)");
  const data = await encodeDataset(cmd.data, spec, { ...plan, validFraction: 0, targetFolds: k }, budget);
  const groups = data.train.groups ? new Set(data.train.groups).size : data.train.rows;
  if (groups < k)
    throw new Error(
      `--average-folds: ${k} folds need at least ${k} ${data.train.groups ? "groups" : "rows"}, the data has ${groups}`,
    );
  return { ...data, averageFolds: k };
}

/** The network's shape: the spec's heads (regression targets scaled), the encoder's inputs. */
function networkConfig(
  args: ResolvedTrainArgs,
  spec: DatasetSpec,
  data: Data,
  previous: TrainedModel | undefined,
): NetworkConfig {
  const specHeads: NetworkConfig["heads"] = spec.tasks.map((t) => ({
    name: t.name,
    type: t.type,
    ...(t.type === "binary" && t.given !== undefined ? { given: t.given } : {}),
    ...(t.type === "regression"
      ? {
          transform: t.transform ?? "none",
          ...(t.loss === "huber" ? { loss: "huber" as const, delta: t.delta ?? 1 } : {}),
        }
      : {}),
  }));
  const heads = scaleHeads(specHeads, data.train.labels, previous?.config.heads);
  const encoder = data.encoder;
  return {
    arch: args.arch,
    options: layerWidths(args.options, data.train.rows, previous?.config.options),
    ...embeddingLayout(args.arch, heads, args.embeddingDim),
    denseSize: encoder.denseSize,
    idSlots: encoder.idSlots,
    vocabSize: encoder.vocabSize,
    pools: embeddingPools(encoder),
    heads,
  };
}

/**
 * The training loop, checkpointing into OUT/checkpoint after every epoch (and resuming from it
 * with --resume), warm-started from the earlier model when there is one.
 */
async function fitNetwork(
  cmd: TrainCommand,
  args: ResolvedTrainArgs,
  config: NetworkConfig,
  data: Data,
  previous: TrainedModel | undefined,
  taskWeights: Record<string, number>,
  budget: { batchSize: number; epochs: number; workers: number },
): Promise<{ result: TrainResult; warm?: WarmStartReport; foldAverage?: FoldAverage }> {
  let warm: WarmStartReport | undefined;
  const options: TrainOptions = {
    ...(previous
      ? {
          initialize: (params: Params) => {
            warm = warmStart(params, config, data.encoder, previous);
          },
        }
      : {}),
    epochs: budget.epochs,
    batchSize: budget.batchSize,
    learningRate: args.learningRate,
    optimizer: args.optimizer,
    ...embeddingOptions(args, budget.batchSize, data.encoder),
    schedule: args.schedule,
    taskWeighting: args.taskWeighting,
    earlyStop: args.earlyStop,
    patience: args.patience,
    l2: args.l2,
    rankingLoss: args.rankingLoss,
    workers: budget.workers,
    seed: args.seed,
    taskWeights,
    inputs: data.encoder.features,
    ...dropoutOption(args, data.encoder),
    ...(cmd.onEpoch ? { onEpoch: cmd.onEpoch } : {}),
    ...(cmd.onBatch ? { onBatch: cmd.onBatch } : {}),
  };
  const k = data.averageFolds;
  if (k > 1) {
    // The folds the encoder's target columns were computed out of (../data/encode-dataset.ts).
    const folds = targetFolds(data.train.rows, data.train.groups, args.seed, k);
    const foldAverage = await trainFoldAverage(config, data.train, folds, k, options);
    const result: TrainResult = {
      params: paramsFromWeights(foldAverage.weights),
      history: foldAverage.history,
      bestEpoch: foldAverage.bestEpoch,
      validation: foldAverage.validation,
    };
    return { result, foldAverage, ...(warm ? { warm } : {}) };
  }
  const fingerprint = runFingerprint(cmd, args, data.encoder);
  const out = cmd.out;
  let saved = false;
  const result = await trainNetworkAsync(config, data.train, data.valid, {
    ...options,
    ...(out !== undefined
      ? {
          checkpoint: {
            save: (state: TrainingState) => {
              saveCheckpoint(out, fingerprint, state);
              saved = true;
            },
            ...(cmd.resume ? { resume: loadCheckpoint(out, fingerprint) } : {}),
          },
        }
      : {}),
  }).catch((error: unknown) => {
    // The run's checkpoint holds the state before the divergence under these very options (its
    // fingerprint): --resume would only run into it again, so it goes with the failed run.
    if (error instanceof DivergenceError && out !== undefined && (saved || cmd.resume)) removeCheckpoint(out);
    throw error;
  });
  return { result, ...(warm ? { warm } : {}) };
}

/** The id dropout `args` ask for, over the fitted encoder's features (../train/id-dropout.ts). */
function dropoutOption(args: ResolvedTrainArgs, encoder: EncoderState): Pick<TrainOptions, "idDropout"> {
  const dropout = idDropout(encoder, args.idDropout, args.seed);
  return dropout ? { idDropout: dropout } : {};
}

/**
 * Embedding rows no training row read (nor an earlier model's, carried by the warm start) take
 * their feature's mean row (../train/unread-rows.ts), before calibration and export read them.
 */
function settleEmbedding(
  params: Params,
  config: NetworkConfig,
  data: Data,
  previous: TrainedModel | undefined,
  run: { taskWeights: Record<string, number>; seed: number },
): TrainSummary["unseenFitted"] {
  const variable = params.embedding;
  if (!variable) return { features: [], seconds: 0 };
  const table = Float32Array.from(variable.dataSync() as Float32Array);
  const kept = previous ? carriedRows(config, data.encoder, previous) : undefined;
  const reads = rowReads(data.encoder, data.train);
  if (neutraliseUnreadRows(table, config.embeddingDim, data.encoder, reads, kept) > 0)
    tf.tidy(() => variable.assign(tf.tensor(table, variable.shape)));
  const started = performance.now();
  const features = fitUnseenRows(params, config, data.encoder, {
    train: data.train,
    taskWeights: run.taskWeights,
    seed: run.seed,
    fixed: (row) => reads[row]! > 0 || kept?.[row] === 1,
  });
  return { features, seconds: (performance.now() - started) / 1000 };
}

/**
 * What must match for a checkpoint to continue this run: the data, spec and fold, the earlier
 * model, the resolved arguments and the fitted encoder (which changes with the data, the spec
 * and the split).
 */
function runFingerprint(cmd: TrainCommand, args: ResolvedTrainArgs, encoder: EncoderState): string {
  const run = { data: cmd.data, spec: cmd.spec, fold: cmd.fold ?? null, initFrom: cmd.initFrom ?? null };
  return createHash("sha256")
    .update(JSON.stringify({ run, args: { ...args, options: sortedKeys(args.options) }, encoder }))
    .digest("hex");
}

function sortedKeys<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) as T;
}

/** The trained model as DIR/training/ keeps it: network, encoder, weights and the run's record. */
function trainedModel(
  cmd: TrainCommand,
  args: ResolvedTrainArgs,
  config: NetworkConfig,
  data: Data,
  result: TrainResult,
  run: {
    weights: Weights;
    validation: Record<string, TaskMetrics>;
    calibration: HeadCalibration;
    taskWeights: Record<string, number>;
    backend: string;
    budget: { batchSize: number; epochs: number };
    folds?: FoldRun[];
  },
): TrainedModel {
  return {
    config,
    encoder: data.encoder,
    validation: run.validation,
    weights: run.weights,
    training: {
      createdAt: new Date().toISOString(),
      data: cmd.data,
      seed: args.seed,
      epochs: result.history.length,
      bestEpoch: result.bestEpoch,
      patience: args.patience,
      batchSize: run.budget.batchSize,
      maxEpochs: run.budget.epochs,
      taskWeights: run.taskWeights,
      trainRows: data.train.rows,
      validRows: run.folds ? data.train.rows : data.valid.rows,
      rowsRead: data.counts.read,
      rowsSkipped: data.counts.skipped,
      ...(Object.keys(data.unlabelled).length > 0 ? { rowsUnlabelled: data.unlabelled } : {}),
      split: data.split,
      taskWeighting: args.taskWeighting,
      rankingLoss: args.rankingLoss,
      ...(run.calibration.heads ? { calibration: run.calibration.heads } : {}),
      backend: run.backend,
      history: result.history,
      ...(run.folds ? { folds: run.folds } : {}),
    },
  };
}

/**
 * DIR/training/ (the checkpoint then goes), DIR/spec.json (so predict and evaluate read data
 * files without --spec) and DIR/report.html from the validation split's diagnostics.
 */
async function writeModelDir(
  dir: string,
  trained: TrainedModel,
  spec: DatasetSpec,
  diagnostics: () => ReportDiagnostics,
): Promise<void> {
  await saveTrainedModel(dir, trained);
  removeCheckpoint(dir);
  await writeAtomic(join(dir, "spec.json"), `${JSON.stringify(spec, null, 1)}\n`);
  await writeReport(dir, trained, diagnostics());
}

/**
 * Under this many positive training rows a binary head learns little beyond the base rate (and a
 * fold network may see none): said, not refused, as a rare event may be what the data has.
 */
export const FEW_POSITIVES = 20;

function resolveTaskWeights(
  spec: DatasetSpec,
  given: Record<string, number> | undefined,
): Record<string, number> {
  const weights: Record<string, number> = Object.fromEntries(spec.tasks.map((t) => [t.name, t.weight ?? 1]));
  for (const [name, w] of Object.entries(given ?? {})) {
    if (!(name in weights))
      throw new Error(`--task-weights: no task named "${name}" (tasks: ${Object.keys(weights).join(", ")})`);
    weights[name] = w;
  }
  // A loss of 0 everywhere trains nothing: the network would keep its random start.
  if (!Object.values(weights).some((w) => w > 0))
    throw new Error(
      `--task-weights: every task weighs 0 (the spec's "weight" and --task-weights), so training would learn nothing; give one a weight above 0`,
    );
  return weights;
}
