/**
 * The trainer's own files in a model directory: DIR/training/network.json (architecture,
 * encoder state, metrics, weight index) and DIR/training/weights.bin (float32, little-endian).
 * The exporter reads these; it needs no TensorFlow.js.
 */
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { EncoderState } from "../../shared/encoder/state.ts";
import type { TaskMetrics } from "../../shared/manifest.ts";
import type { NetworkConfig } from "../models/network.ts";
import type { Weights } from "../models/types.ts";

export interface TrainingInfo {
  /** ISO time the training finished; also the model version, so export is reproducible. */
  createdAt: string;
  data: string;
  seed: number;
  epochs: number;
  bestEpoch: number;
  taskWeights: Record<string, number>;
  trainRows: number;
  validRows: number;
  /** Data rows read, and bad rows skipped within the error budget (absent in older models). */
  rowsRead?: number;
  rowsSkipped?: number;
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
  taskWeighting?: "static" | "uncertainty" | "dwa";
  rankingLoss?: number;
}

export interface TrainedModel {
  config: NetworkConfig;
  encoder: EncoderState;
  validation: Record<string, TaskMetrics>;
  training: TrainingInfo;
  weights: Weights;
}

interface NetworkFile extends Omit<TrainedModel, "weights"> {
  format: "mtrank-trained/1";
  weights: { name: string; shape: number[]; offset: number; length: number }[];
}

export async function saveTrainedModel(dir: string, model: TrainedModel): Promise<void> {
  const folder = join(dir, "training");
  await mkdir(folder, { recursive: true });
  const index: NetworkFile["weights"] = [];
  let offset = 0;
  for (const [name, w] of Object.entries(model.weights)) {
    index.push({ name, shape: w.shape, offset, length: w.values.length });
    offset += w.values.length;
  }
  const all = new Float32Array(offset);
  for (const entry of index) all.set(model.weights[entry.name]!.values, entry.offset);
  const bytes = new Uint8Array(all.length * 4);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < all.length; i++) view.setFloat32(i * 4, all[i]!, true);
  const { weights: _, ...rest } = model;
  const file: NetworkFile = { format: "mtrank-trained/1", ...rest, weights: index };
  await writeAtomic(join(folder, "weights.bin"), bytes);
  await writeAtomic(join(folder, "network.json"), `${JSON.stringify(file, null, 1)}\n`);
}

export async function loadTrainedModel(dir: string): Promise<TrainedModel> {
  const folder = join(dir, "training");
  let file: NetworkFile;
  try {
    file = JSON.parse(await readFile(join(folder, "network.json"), "utf8")) as NetworkFile;
  } catch (error) {
    throw new Error(`--model: ${dir} holds no trained model (${(error as Error).message})`);
  }
  if (file.format !== "mtrank-trained/1")
    throw new Error(`--model: ${folder}/network.json has unknown format`);
  const raw = await readFile(join(folder, "weights.bin"));
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const weights: Weights = {};
  for (const entry of file.weights) {
    if ((entry.offset + entry.length) * 4 > raw.byteLength)
      throw new Error(`--model: ${folder}/weights.bin is truncated`);
    const values = new Float32Array(entry.length);
    for (let i = 0; i < entry.length; i++) values[i] = view.getFloat32((entry.offset + i) * 4, true);
    weights[entry.name] = { shape: entry.shape, values };
  }
  const { format: _, weights: __, ...rest } = file;
  return { ...rest, weights };
}

/** Write to a temporary name then rename, so a reader never sees a half-written file. */
export async function writeAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, data);
  await rename(tmp, path);
}
