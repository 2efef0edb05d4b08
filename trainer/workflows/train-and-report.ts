/** The `train` verb: spec + data -> encoder, network, validation metrics, saved model directory. */
import { createHash } from "node:crypto";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { embeddingPools } from "../../shared/encoder/state.ts";
import type { TaskMetrics } from "../../shared/manifest.ts";
import type { DatasetSpec } from "../../shared/spec.ts";
import { loadCheckpoint, removeCheckpoint, saveCheckpoint } from "../artifact/checkpoint.ts";
import {
  loadTrainedModel,
  saveTrainedModel,
  type TrainedModel,
  type WeightingKind,
} from "../artifact/trained-model.ts";
import { writeAtomic } from "../core/write-atomic.ts";
import { encodeDataset } from "../data/encode-dataset.ts";
import { readSpecFile } from "../data/read-spec.ts";
import { embeddingLayout, type NetworkConfig, readWeights } from "../models/network.ts";
import { architecture } from "../models/registry.ts";
import { type ArchOptions, DEFAULT_ARCH_OPTIONS, type Params } from "../models/types.ts";
import { writeReport } from "../report/training-report.ts";
import { validationDiagnostics } from "../report/validation-diagnostics.ts";
import { selectBackend } from "../train/backend.ts";
import type { L2Penalty } from "../train/batch-gradients.ts";
import { type CalibrationKind, calibrateHeads, type HeadCalibration } from "../train/calibrate-heads.ts";
import type { OptimizerKind } from "../train/dense-optimizer.ts";
import { validationScore } from "../train/early-stopping.ts";
import { checkWorkers } from "../train/parallel-optimizer.ts";
import type { ScheduleKind } from "../train/schedule.ts";
import { stepBudget } from "../train/step-budget.ts";
import { scaleHeads } from "../train/target-scale.ts";
import {
  DEFAULT_TRAIN_OPTIONS,
  type EpochLog,
  predictNetwork,
  type TrainingState,
  type TrainOptions,
  trainNetwork,
} from "../train/train-network.ts";
import { type WarmStartReport, warmStart } from "../train/warm-start.ts";

export interface TrainCommand {
  data: string;
  spec: string;
  arch: string;
  /** Layer sizes and expert counts over DEFAULT_ARCH_OPTIONS (each architecture reads its own). */
  options?: Partial<ArchOptions>;
  /** Model directory to write; absent: train and evaluate only (cross-validation folds). */
  out?: string;
  /** Validate on fold `index` of k instead of a validFraction split. */
  fold?: { k: number; index: number };
  epochs?: number;
  seed?: number;
  validFraction?: number;
  /** Validate on the latest rows by this column instead of a random (or group) split. */
  timeColumn?: string;
  /** Bad rows to skip and count before stopping (default 0: stop at the first). */
  maxBadRows?: number;
  /** Start from this earlier model directory's weights (warm start). */
  initFrom?: string;
  /** Continue an interrupted run from out/checkpoint (written after every epoch). */
  resume?: boolean;
  /** The validation metric early stopping maximises (../train/early-stopping.ts). */
  earlyStop?: string;
  /** Epochs without a better validation score before stopping (default DEFAULT_TRAIN_OPTIONS). */
  patience?: number;
  /** L2 penalty on the embedding rows a batch reads and on kernels: sets both (DEFAULT_L2). */
  l2?: number;
  /** L2 on the embedding rows alone, over l2. */
  embeddingL2?: number;
  /** L2 on dense kernels alone, over l2. */
  kernelL2?: number;
  taskWeights?: Record<string, number>;
  embeddingDim?: number;
  batchSize?: number;
  learningRate?: number;
  optimizer?: OptimizerKind;
  schedule?: ScheduleKind;
  taskWeighting?: WeightingKind;
  /** Weight of the listwise ranking loss within groups (0: off). */
  rankingLoss?: number;
  /** Binary heads' calibration fitted on validation after training (default "platt"). */
  calibration?: CalibrationKind;
  backend?: string;
  /** Threads computing each batch's gradients (1: this thread only; see ../train/parallel-optimizer.ts). */
  workers?: number;
  onEpoch?: (log: EpochLog) => void;
  onBatch?: TrainOptions["onBatch"];
}

export interface TrainSummary {
  backend: string;
  trainRows: number;
  validRows: number;
  /** Categorical features hashed into 2^20 buckets: more distinct values than the encoder tracks. */
  hashed: string[];
  /** Bad rows skipped within the error budget (--max-bad-rows), and the first reasons. */
  rowsSkipped: number;
  skipped: string[];
  /** Per task that masks missing labels: rows kept for the other tasks without its label. */
  unlabelled: Record<string, number>;
  split: "random" | "group" | "time";
  /** The batch size and the most epochs the run had (../train/step-budget.ts when not given). */
  batchSize: number;
  maxEpochs: number;
  /** With initFrom: what the earlier model's weights covered. */
  warmStart?: WarmStartReport;
  bestEpoch: number;
  validation: Record<string, TaskMetrics>;
  /** Binary heads' calibration and the validation ECE before and after it. */
  calibration?: HeadCalibration["heads"];
}

/**
 * The default L2 penalties (../train/batch-gradients.ts L2Penalty: the embedding rows' share divided by
 * their reads). Against none at all, a penalty kept the simulator's id embeddings from memorising
 * (best epoch 1 → 3-4, purchase AUC +0.0033 to +0.0083); against a plain 1e-3 on both, this pair
 * keeps the simulator's figures and lets interactions through (L2Penalty's table).
 */
export const DEFAULT_L2: L2Penalty = { embedding: 1e-2, kernel: 1e-4 };

export async function runTraining(cmd: TrainCommand): Promise<TrainSummary> {
  architecture(cmd.arch); // fail on a bad --arch before reading any data
  const spec = await readSpecFile(cmd.spec);
  const taskWeights = resolveTaskWeights(spec, cmd.taskWeights);
  validationScore(cmd.earlyStop ?? "auc", spec.tasks); // fail on a bad --early-stop before reading data
  checkWorkers(cmd.workers ?? 1, cmd); // and on --workers with what it cannot train
  const backend = await selectBackend(cmd.backend);
  const previous = cmd.initFrom !== undefined ? await loadTrainedModel(cmd.initFrom) : undefined;
  const seed = cmd.seed ?? DEFAULT_TRAIN_OPTIONS.seed;
  const patience = cmd.patience ?? DEFAULT_TRAIN_OPTIONS.patience;
  const data = await encodeDataset(
    cmd.data,
    spec,
    {
      validFraction: cmd.validFraction ?? 0.1,
      seed,
      ...(cmd.timeColumn !== undefined ? { timeColumn: cmd.timeColumn } : {}),
      ...(cmd.fold ? { fold: cmd.fold } : {}),
    },
    { maxBadRows: cmd.maxBadRows ?? 0 },
  );
  const { train, valid, encoder: encoderState } = data;
  if (train.rows === 0 || valid.rows === 0) {
    throw new Error(
      `--valid-fraction: the ${data.split} split left ${train.rows} training and ${valid.rows} validation rows`,
    );
  }
  const { batchSize, epochs: maxEpochs } = stepBudget(train.rows, cmd);
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
  const heads = scaleHeads(specHeads, train.labels, previous?.config.heads);
  const config: NetworkConfig = {
    arch: cmd.arch,
    options: { ...DEFAULT_ARCH_OPTIONS, ...cmd.options },
    ...embeddingLayout(cmd.arch, heads, cmd.embeddingDim ?? 8),
    denseSize: encoderState.denseSize,
    idSlots: encoderState.idSlots,
    vocabSize: encoderState.vocabSize,
    pools: embeddingPools(encoderState),
    heads,
  };
  let warm: WarmStartReport | undefined;
  // What must match for a checkpoint to continue this run: the options and the fitted encoder
  // (which changes with the data, the spec and the split).
  const fingerprint = createHash("sha256")
    .update(
      JSON.stringify({
        cmd: { ...cmd, out: undefined, resume: undefined, onEpoch: undefined, onBatch: undefined },
        encoderState,
      }),
    )
    .digest("hex");
  const out = cmd.out;
  const result = trainNetwork(config, train, valid, {
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
            warm = warmStart(params, config, encoderState, previous);
          },
        }
      : {}),
    ...DEFAULT_TRAIN_OPTIONS,
    epochs: maxEpochs,
    batchSize,
    learningRate: cmd.learningRate ?? DEFAULT_TRAIN_OPTIONS.learningRate,
    ...(cmd.optimizer ? { optimizer: cmd.optimizer } : {}),
    ...(cmd.schedule ? { schedule: cmd.schedule } : {}),
    ...(cmd.taskWeighting ? { taskWeighting: cmd.taskWeighting } : {}),
    ...(cmd.earlyStop ? { earlyStop: cmd.earlyStop } : {}),
    patience,
    l2: {
      embedding: cmd.embeddingL2 ?? cmd.l2 ?? DEFAULT_L2.embedding,
      kernel: cmd.kernelL2 ?? cmd.l2 ?? DEFAULT_L2.kernel,
    },
    ...(cmd.rankingLoss ? { rankingLoss: cmd.rankingLoss } : {}),
    ...(cmd.workers !== undefined ? { workers: cmd.workers } : {}),
    seed,
    taskWeights,
    ...(cmd.onEpoch ? { onEpoch: cmd.onEpoch } : {}),
    ...(cmd.onBatch ? { onBatch: cmd.onBatch } : {}),
  });
  const weights = readWeights(result.params);
  const calibration = calibrateHeads(cmd.calibration ?? "platt", config, result.params, valid);
  const validation = calibration.validation ?? result.validation;
  const trained: TrainedModel = {
    config,
    encoder: encoderState,
    validation,
    weights,
    training: {
      createdAt: new Date().toISOString(),
      data: cmd.data,
      seed,
      epochs: result.history.length,
      bestEpoch: result.bestEpoch,
      patience,
      batchSize,
      maxEpochs,
      taskWeights,
      trainRows: train.rows,
      validRows: valid.rows,
      rowsRead: data.counts.read,
      rowsSkipped: data.counts.skipped,
      ...(Object.keys(data.unlabelled).length > 0 ? { rowsUnlabelled: data.unlabelled } : {}),
      split: data.split,
      taskWeighting: cmd.taskWeighting ?? "static",
      rankingLoss: cmd.rankingLoss ?? 0,
      ...(calibration.heads ? { calibration: calibration.heads } : {}),
      backend,
      history: result.history,
    },
  };
  const summary: TrainSummary = {
    backend,
    trainRows: train.rows,
    validRows: valid.rows,
    rowsSkipped: data.counts.skipped,
    skipped: data.skipped,
    unlabelled: data.unlabelled,
    hashed: data.hashed,
    split: data.split,
    batchSize,
    maxEpochs,
    bestEpoch: result.bestEpoch,
    validation,
    ...(calibration.heads ? { calibration: calibration.heads } : {}),
    ...(warm ? { warmStart: warm } : {}),
  };
  if (cmd.out === undefined) {
    tf.dispose(Object.values(result.params));
    return summary;
  }
  await saveTrainedModel(cmd.out, trained);
  removeCheckpoint(cmd.out);
  // The spec travels with the model, so predict/evaluate can read data files without --spec.
  await writeAtomic(join(cmd.out, "spec.json"), `${JSON.stringify(spec, null, 1)}\n`);
  await writeReport(
    cmd.out,
    trained,
    validationDiagnostics(
      config.heads,
      valid.labels,
      calibration.predictions ?? predictNetwork(result.params, config, valid),
      taskWeights,
      valid.groups ? Array.from(valid.groups, String) : null,
    ),
  );
  tf.dispose(Object.values(result.params));
  return summary;
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
