/**
 * The trainer's own files in a model directory: DIR/training/network.json (format, architecture,
 * encoder state, metrics, weight index) and DIR/training/weights.bin (float32, little-endian).
 * The exporter reads these; it needs no TensorFlow.js. The format's versions and the weight
 * layouts each may hold: ../models/layout-format.ts.
 */
import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import type { EncoderState } from "../../shared/encoder/state.ts";
import type { TaskMetrics } from "../../shared/manifest.ts";
import { readableJson } from "../core/readable-json.ts";
import { writeAtomic } from "../core/write-atomic.ts";
import { formatTag, layoutFormat, parseFormatTag } from "../models/layout-format.ts";
import type { NetworkConfig } from "../models/network.ts";
import type { Weights } from "../models/types.ts";
import { type PackedEntry, packFloats, unpackFloats } from "./float-pack.ts";

/** How task losses are combined (../train/task-weighting.ts implements each kind). */
export type WeightingKind = "static" | "uncertainty" | "dwa";

export interface TrainingInfo {
  /** ISO time the training finished; also the model version, so export is reproducible. */
  createdAt: string;
  data: string;
  seed: number;
  epochs: number;
  bestEpoch: number;
  /** Early stopping's patience (absent in older models). */
  patience?: number;
  /** Batch size and the most epochs the run had (absent in older models). */
  batchSize?: number;
  maxEpochs?: number;
  taskWeights: Record<string, number>;
  trainRows: number;
  validRows: number;
  /** Data rows read, and bad rows skipped within the error budget (absent in older models). */
  rowsRead?: number;
  rowsSkipped?: number;
  /** Per task that masks missing labels: kept rows without its label (absent when none masks). */
  rowsUnlabelled?: Record<string, number>;
  /** How validation rows were chosen (absent in older models). */
  split?: "random" | "group" | "time";
  backend: string;
  history: {
    epoch: number;
    trainLoss: number;
    score: number;
    seconds: number;
    validation: Record<string, TaskMetrics>;
    /** Mean training loss per task and the weight each task had (absent in older models). */
    taskLosses?: Record<string, number>;
    taskWeights?: Record<string, number>;
  }[];
  /** How task losses were combined, and the listwise ranking loss weight (absent: static, 0). */
  taskWeighting?: WeightingKind;
  rankingLoss?: number;
  /**
   * Binary heads' Platt scaling fitted on validation after training (also in config.heads), with
   * the validation ECE before and after (absent: not calibrated).
   */
  calibration?: Record<string, { scale: number; shift: number; eceBefore: number; eceAfter: number }>;
  /**
   * The fold networks whose weight average this model is (../train/fold-average.ts); then
   * `history` is the first fold's, `bestEpoch` their mean, `validRows` every row (each scored out
   * of fold). Absent: one network validated on a held-out part.
   */
  folds?: FoldRun[];
}

/** One fold network of a run that averages them. */
export interface FoldRun {
  /** Its training and validation rows. */
  trainRows: number;
  validRows: number;
  bestEpoch: number;
  /** Epochs run before early stopping ended it. */
  epochs: number;
  /** Its metrics on its own validation fold, uncalibrated. */
  validation: Record<string, TaskMetrics>;
}

export interface TrainedModel {
  config: NetworkConfig;
  encoder: EncoderState;
  validation: Record<string, TaskMetrics>;
  training: TrainingInfo;
  weights: Weights;
}

interface NetworkFile extends Omit<TrainedModel, "weights"> {
  /** "mtrank-trained/<n>" (../models/layout-format.ts). */
  format: string;
  weights: PackedEntry[];
}

export async function saveTrainedModel(dir: string, model: TrainedModel): Promise<void> {
  const folder = join(dir, "training");
  await mkdir(folder, { recursive: true });
  const { index, bytes } = packFloats(model.weights);
  const { weights: _, ...rest } = model;
  const file: NetworkFile = { format: formatTag(layoutFormat(model)), ...rest, weights: index };
  await writeAtomic(join(folder, "weights.bin"), bytes);
  await writeAtomic(join(folder, "network.json"), `${readableJson(file)}\n`);
}

export async function loadTrainedModel(dir: string): Promise<TrainedModel> {
  const folder = join(dir, "training");
  let file: NetworkFile;
  try {
    file = JSON.parse(await readFile(join(folder, "network.json"), "utf8")) as NetworkFile;
  } catch (error) {
    throw new Error(`--model: ${dir} holds no trained model (${(error as Error).message})`);
  }
  const format = parseFormatTag(file.format);
  if (format === undefined) throw new Error(`--model: ${folder}/network.json has unknown format`);
  const raw = await readFile(join(folder, "weights.bin"));
  const weights: Weights = unpackFloats(file.weights, raw, `--model: ${folder}/weights.bin`);
  const { format: _, weights: __, ...rest } = file;
  const model = { ...rest, weights };
  const fits = layoutFormat(model);
  if (fits < format)
    throw new Error(
      `--model: ${folder}/network.json says format ${format} but holds a format-${fits} layout`,
    );
  return model;
}
