/** The `train` verb: spec + data -> encoder, network, validation metrics, saved model directory. */
import { createHash } from "node:crypto";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { type EncoderState, embeddingPools } from "../../shared/encoder/state.ts";
import type { TaskMetrics } from "../../shared/manifest.ts";
import type { DatasetSpec } from "../../shared/spec.ts";
import { loadCheckpoint, removeCheckpoint, saveCheckpoint } from "../artifact/checkpoint.ts";
import { loadTrainedModel, saveTrainedModel, type TrainedModel } from "../artifact/trained-model.ts";
import { writeAtomic } from "../core/write-atomic.ts";
import { encodeDataset } from "../data/encode-dataset.ts";
import { readSpecFile } from "../data/read-spec.ts";
import { embeddingLayout, type NetworkConfig, readWeights } from "../models/network.ts";
import { architecture } from "../models/registry.ts";
import { DEFAULT_ARCH_OPTIONS, type Params, type Weights } from "../models/types.ts";
import { type ReportDiagnostics, writeReport } from "../report/training-report.ts";
import { validationDiagnostics } from "../report/validation-diagnostics.ts";
import { selectBackend } from "../train/backend.ts";
import { calibrateHeads, type HeadCalibration } from "../train/calibrate-heads.ts";
import { resolveEarlyStop, validationScore } from "../train/early-stopping.ts";
import { embeddingOptions } from "../train/embedding-rules.ts";
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
  type EpochLog,
  predictNetwork,
  type TrainingState,
  type TrainOptions,
  type TrainResult,
  trainNetwork,
} from "../train/train-network.ts";
import { type WarmStartReport, warmStart } from "../train/warm-start.ts";

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
  /** Categorical features with a frequency column (id-like by default, or as the spec says). */
  frequency: string[];
  /** Categorical features with target columns (id-like by default, or as the spec says). */
  targetEncoded: string[];
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
  bestEpoch: number;
  validation: Record<string, TaskMetrics>;
  /** Binary heads' calibration and the validation ECE before and after it. */
  calibration?: HeadCalibration["heads"];
}

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
  const { data, budget, config, result, warm } = await (async () => {
    const data = await splitData(cmd, args, spec);
    const budget = stepBudget(data.train.rows, args, host);
    const config = networkConfig(args, spec, data, previous);
    return { data, budget, config, ...fitNetwork(cmd, args, config, data, previous, taskWeights, budget) };
  })().finally(stopSpareWorkers);
  const weights = readWeights(result.params);
  const calibration = calibrateHeads(args.calibration, config, result.params, data.valid);
  const validation = calibration.validation ?? result.validation;
  const trained = trainedModel(cmd, args, config, data, result, {
    weights,
    validation,
    calibration,
    taskWeights,
    backend,
    budget,
  });
  const summary: TrainSummary = {
    backend,
    trainRows: data.train.rows,
    validRows: data.valid.rows,
    rowsSkipped: data.counts.skipped,
    skipped: data.skipped,
    unlabelled: data.unlabelled,
    hashed: data.hashed,
    frequency: data.encoder.features.flatMap((f) =>
      f.kind === "categorical" && f.frequency ? [f.name] : [],
    ),
    targetEncoded: data.encoder.features.flatMap((f) =>
      f.kind === "categorical" && f.target ? [f.name] : [],
    ),
    earlyStop: resolveEarlyStop(args.earlyStop, data.valid.rows),
    split: data.split,
    batchSize: budget.batchSize,
    maxEpochs: budget.epochs,
    workers: budget.workers,
    bestEpoch: result.bestEpoch,
    validation,
    ...(calibration.heads ? { calibration: calibration.heads } : {}),
    ...(warm ? { warmStart: warm } : {}),
  };
  if (cmd.out !== undefined)
    await writeModelDir(cmd.out, trained, spec, () =>
      validationDiagnostics(
        config.heads,
        data.valid.labels,
        calibration.predictions ?? predictNetwork(result.params, config, data.valid),
        taskWeights,
        data.valid.groups ? Array.from(data.valid.groups, String) : null,
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
  const spec = await readSpecFile(cmd.spec);
  const taskWeights = resolveTaskWeights(spec, args.taskWeights);
  validationScore(args.earlyStop, spec.tasks);
  if (args.workers !== undefined) checkWorkers(args.workers, args);
  const backend = await selectBackend(args.backend);
  const previous = cmd.initFrom !== undefined ? await loadTrainedModel(cmd.initFrom) : undefined;
  return { spec, taskWeights, backend, previous };
}

type Data = Awaited<ReturnType<typeof encodeDataset>>;

/** The data read, checked, split and encoded (the encoder fitted on the training part). */
async function splitData(cmd: TrainCommand, args: ResolvedTrainArgs, spec: DatasetSpec): Promise<Data> {
  const data = await encodeDataset(
    cmd.data,
    spec,
    {
      validFraction: args.validFraction,
      seed: args.seed,
      ...(args.timeColumn !== undefined ? { timeColumn: args.timeColumn } : {}),
      ...(cmd.fold ? { fold: cmd.fold } : {}),
    },
    { maxBadRows: args.maxBadRows },
  );
  if (data.train.rows === 0 || data.valid.rows === 0) {
    throw new Error(
      `--valid-fraction: the ${data.split} split left ${data.train.rows} training and ${data.valid.rows} validation rows`,
    );
  }
  return data;
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
    options: { ...DEFAULT_ARCH_OPTIONS, ...args.options },
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
function fitNetwork(
  cmd: TrainCommand,
  args: ResolvedTrainArgs,
  config: NetworkConfig,
  data: Data,
  previous: TrainedModel | undefined,
  taskWeights: Record<string, number>,
  budget: { batchSize: number; epochs: number; workers: number },
): { result: TrainResult; warm?: WarmStartReport } {
  let warm: WarmStartReport | undefined;
  const fingerprint = runFingerprint(cmd, args, data.encoder);
  const out = cmd.out;
  const result = trainNetwork(config, data.train, data.valid, {
    ...(out !== undefined
      ? {
          checkpoint: {
            save: (state: TrainingState) => saveCheckpoint(out, fingerprint, state),
            ...(cmd.resume ? { resume: loadCheckpoint(out, fingerprint) } : {}),
          },
        }
      : {}),
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
    ...(cmd.onEpoch ? { onEpoch: cmd.onEpoch } : {}),
    ...(cmd.onBatch ? { onBatch: cmd.onBatch } : {}),
  });
  return { result, ...(warm ? { warm } : {}) };
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
      validRows: data.valid.rows,
      rowsRead: data.counts.read,
      rowsSkipped: data.counts.skipped,
      ...(Object.keys(data.unlabelled).length > 0 ? { rowsUnlabelled: data.unlabelled } : {}),
      split: data.split,
      taskWeighting: args.taskWeighting,
      rankingLoss: args.rankingLoss,
      ...(run.calibration.heads ? { calibration: run.calibration.heads } : {}),
      backend: run.backend,
      history: result.history,
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
  return weights;
}
