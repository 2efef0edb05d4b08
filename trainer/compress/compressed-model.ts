/**
 * Writes a compressed model as a trained-model directory (training/network.json + weights.bin,
 * spec.json), so `export`, `evaluate` and `predict` read it like any other, plus
 * training/compression.json saying what was done to which model.
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import type { TaskMetrics } from "../../shared/manifest.ts";
import type { DatasetSpec } from "../../shared/spec.ts";
import { saveTrainedModel, type TrainedModel } from "../artifact/trained-model.ts";
import { writeAtomic } from "../core/write-atomic.ts";
import type { Weights } from "../models/types.ts";
import type { FineTuneLog } from "./fine-tune.ts";

export type CompressionInfo =
  | { method: "prune"; from: string; sparsity: number; achieved: number; embedding: boolean }
  | { method: "distill"; teacher: string; teacherArch: string; alpha: number };

export interface CompressedModel {
  base: Omit<TrainedModel, "weights" | "validation" | "training">;
  weights: Weights;
  validation: Record<string, TaskMetrics>;
  history: FineTuneLog[];
  bestEpoch: number;
  data: string;
  seed: number;
  taskWeights: Record<string, number>;
  rows: { train: number; valid: number };
  backend: string;
  spec: DatasetSpec;
  compression: CompressionInfo;
}

export async function saveCompressedModel(dir: string, m: CompressedModel): Promise<TrainedModel> {
  const trained: TrainedModel = {
    ...m.base,
    weights: m.weights,
    validation: m.validation,
    training: {
      createdAt: new Date().toISOString(),
      data: m.data,
      seed: m.seed,
      epochs: m.history.length,
      bestEpoch: m.bestEpoch,
      taskWeights: m.taskWeights,
      trainRows: m.rows.train,
      validRows: m.rows.valid,
      backend: m.backend,
      history: m.history,
    },
  };
  await mkdir(dir, { recursive: true });
  await saveTrainedModel(dir, trained);
  await writeAtomic(join(dir, "spec.json"), `${JSON.stringify(m.spec, null, 1)}\n`);
  await writeAtomic(join(dir, "training", "compression.json"), `${JSON.stringify(m.compression, null, 1)}\n`);
  return trained;
}
