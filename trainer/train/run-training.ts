/** The `train` verb: spec + data -> encoder, network, validation metrics, saved model directory. */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { compileEncoder } from "../../shared/encoder/encode.ts";
import { fitEncoder } from "../../shared/encoder/fit.ts";
import type { TaskMetrics } from "../../shared/manifest.ts";
import { type DatasetSpec, parseSpec, SpecError } from "../../shared/spec.ts";
import { saveTrainedModel, type TrainedModel, writeAtomic } from "../artifact/trained-model.ts";
import { type Dataset, loadDataset } from "../data/load-dataset.ts";
import { splitRows } from "../data/split.ts";
import type { NetworkConfig } from "../models/network.ts";
import { architecture } from "../models/registry.ts";
import { DEFAULT_ARCH_OPTIONS } from "../models/types.ts";
import { writeReport } from "../report/training-report.ts";
import { selectBackend } from "./backend.ts";
import type { OptimizerKind } from "./dense-optimizer.ts";
import type { ScheduleKind } from "./schedule.ts";
import { DEFAULT_TRAIN_OPTIONS, type EpochLog, type LabelledBatch, trainNetwork } from "./train-network.ts";

export interface TrainCommand {
  data: string;
  spec: string;
  arch: string;
  out: string;
  epochs?: number;
  seed?: number;
  validFraction?: number;
  taskWeights?: Record<string, number>;
  embeddingDim?: number;
  batchSize?: number;
  learningRate?: number;
  optimizer?: OptimizerKind;
  schedule?: ScheduleKind;
  backend?: string;
  onEpoch?: (log: EpochLog) => void;
}

export interface TrainSummary {
  backend: string;
  trainRows: number;
  validRows: number;
  bestEpoch: number;
  validation: Record<string, TaskMetrics>;
}

export async function readSpecFile(path: string): Promise<DatasetSpec> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(path, "utf8"));
  } catch (error) {
    throw new SpecError(`--spec: cannot read ${path}: ${(error as Error).message}`);
  }
  return parseSpec(json);
}

export async function runTraining(cmd: TrainCommand): Promise<TrainSummary> {
  architecture(cmd.arch); // fail on a bad --arch before reading any data
  const spec = await readSpecFile(cmd.spec);
  const taskWeights = resolveTaskWeights(spec, cmd.taskWeights);
  const backend = await selectBackend(cmd.backend);
  const data = await loadDataset(cmd.data, spec);
  const seed = cmd.seed ?? DEFAULT_TRAIN_OPTIONS.seed;
  const split = splitRows(data.rows.length, data.groups, cmd.validFraction ?? 0.1, seed);
  if (split.train.length === 0 || split.valid.length === 0) {
    throw new Error(
      `--valid-fraction: the split left ${split.train.length} training and ${split.valid.length} validation rows`,
    );
  }
  const encoderState = fitEncoder(
    spec,
    split.train.map((i) => data.rows[i]!),
  );
  const encoder = compileEncoder(encoderState);
  const config: NetworkConfig = {
    arch: cmd.arch,
    options: DEFAULT_ARCH_OPTIONS,
    embeddingDim: cmd.embeddingDim ?? 8,
    denseSize: encoderState.denseSize,
    idSlots: encoderState.idSlots,
    vocabSize: encoderState.vocabSize,
    heads: spec.tasks.map((t) => ({
      name: t.name,
      type: t.type,
      ...(t.type === "binary" && t.given !== undefined ? { given: t.given } : {}),
      ...(t.type === "regression" ? { transform: t.transform ?? "none" } : {}),
    })),
  };
  const train = labelled(encoder.encodeRows(split.train.map((i) => data.rows[i]!)), data, split.train);
  const valid = labelled(encoder.encodeRows(split.valid.map((i) => data.rows[i]!)), data, split.valid);
  const result = trainNetwork(config, train, valid, {
    ...DEFAULT_TRAIN_OPTIONS,
    epochs: cmd.epochs ?? DEFAULT_TRAIN_OPTIONS.epochs,
    batchSize: cmd.batchSize ?? DEFAULT_TRAIN_OPTIONS.batchSize,
    learningRate: cmd.learningRate ?? DEFAULT_TRAIN_OPTIONS.learningRate,
    ...(cmd.optimizer ? { optimizer: cmd.optimizer } : {}),
    ...(cmd.schedule ? { schedule: cmd.schedule } : {}),
    seed,
    taskWeights,
    ...(cmd.onEpoch ? { onEpoch: cmd.onEpoch } : {}),
  });
  const weights = Object.fromEntries(
    Object.entries(result.params).map(([name, v]) => [
      name,
      { shape: v.shape, values: Float32Array.from(v.dataSync() as Float32Array) },
    ]),
  );
  const trained: TrainedModel = {
    config,
    encoder: encoderState,
    validation: result.validation,
    weights,
    training: {
      createdAt: new Date().toISOString(),
      data: cmd.data,
      seed,
      epochs: result.history.length,
      bestEpoch: result.bestEpoch,
      taskWeights,
      trainRows: split.train.length,
      validRows: split.valid.length,
      backend,
      history: result.history,
    },
  };
  await saveTrainedModel(cmd.out, trained);
  // The spec travels with the model, so predict/evaluate can read data files without --spec.
  await writeAtomic(join(cmd.out, "spec.json"), `${JSON.stringify(spec, null, 1)}\n`);
  await writeReport(cmd.out, trained);
  tf.dispose(Object.values(result.params));
  return {
    backend,
    trainRows: split.train.length,
    validRows: split.valid.length,
    bestEpoch: result.bestEpoch,
    validation: result.validation,
  };
}

function labelled(
  batch: ReturnType<ReturnType<typeof compileEncoder>["encodeRows"]>,
  data: Dataset,
  idx: number[],
): LabelledBatch {
  const labels = Object.fromEntries(
    Object.entries(data.labels).map(([k, v]) => [k, Float32Array.from(idx, (i) => v[i]!)]),
  );
  return { ...batch, labels };
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
