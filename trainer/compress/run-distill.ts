/**
 * `compress --distill-from`: a trained teacher -> a new, smaller student trained on the
 * teacher's data with blended targets (./distill.ts), sharing the teacher's encoder (the
 * student serves the same requests, so it reads the same inputs).
 */
import * as tf from "@tensorflow/tfjs";
import type { TaskMetrics } from "../../shared/manifest.ts";
import { embeddingDimPerHead, embeddingLayout, type NetworkConfig, readWeights } from "../models/network.ts";
import { architecture } from "../models/registry.ts";
import { type ArchOptions, DEFAULT_ARCH_OPTIONS } from "../models/types.ts";
import { calibrateWeights, uncalibrated } from "../train/calibrate-heads.ts";
import { stepBudget } from "../train/step-budget.ts";
import { DEFAULT_TRAIN_OPTIONS, trainNetworkAsync } from "../train/train-network.ts";
import { neutraliseUnreadRows, rowReads } from "../train/unread-rows.ts";
import { saveCompressedModel } from "./compressed-model.ts";
import { blendTargets, teacherTargets } from "./distill.ts";
import { evaluateWeights } from "./fine-tune.ts";
import { type CompressOptions, loadCompressSource } from "./labelled-data.ts";

export interface DistillCommand extends CompressOptions {
  teacher: string;
  arch: string;
  /** Student sizes; unset fields take the trainer's defaults. */
  options?: Partial<ArchOptions>;
  /** Weight of the true labels in the targets (the rest is the teacher's). Default 0.5. */
  alpha?: number;
}

export interface DistillSummary {
  teacher: Record<string, TaskMetrics>;
  student: Record<string, TaskMetrics>;
  bestEpoch: number;
  /** The batch size and the most epochs the student had (as `train`: ../train/step-budget.ts when not given). */
  batchSize: number;
  epochs: number;
  parameters: { teacher: number; student: number };
  rows: { train: number; valid: number };
  /**
   * The teacher was trained as fold networks (../train/fold-average.ts): it trained on every row
   * of its file, so `teacher` is in-sample on that file.
   */
  sourceInSample: boolean;
}

export async function runDistill(cmd: DistillCommand): Promise<DistillSummary> {
  architecture(cmd.arch); // a bad --arch fails before any data is read
  const { model: teacher, spec, seed, data } = await loadCompressSource(cmd.teacher, cmd);
  const alpha = cmd.alpha ?? 0.5;
  const targets = blendTargets(
    data.train.labels,
    teacherTargets(teacher.config, teacher.weights, data.train),
    alpha,
  );
  // The teacher's calibration stays with the teacher: the student learns calibrated targets and
  // gets its own fit below.
  const { embeddingCopies: _copies, ...shared } = teacher.config;
  const heads = uncalibrated(teacher.config.heads);
  const config: NetworkConfig = {
    ...shared,
    ...embeddingLayout(cmd.arch, heads, embeddingDimPerHead(teacher.config)),
    heads,
    arch: cmd.arch,
    options: { ...DEFAULT_ARCH_OPTIONS, ...cmd.options },
  };
  // The student gets the step budget `train` gives the same file: with a fixed 512 × 8, a small
  // file got a few dozen optimiser steps.
  const { batchSize, epochs } = stepBudget(data.train.rows, cmd);
  const result = await trainNetworkAsync(config, { ...data.train, labels: targets }, data.valid, {
    ...DEFAULT_TRAIN_OPTIONS,
    epochs,
    batchSize,
    learningRate: cmd.learningRate ?? DEFAULT_TRAIN_OPTIONS.learningRate,
    seed,
    taskWeights: teacher.training.taskWeights,
    inputs: teacher.encoder.features,
    ...(cmd.onEpoch ? { onEpoch: cmd.onEpoch } : {}),
  });
  const weights = readWeights(result.params);
  tf.dispose(Object.values(result.params));
  const embedding = weights.embedding;
  if (embedding)
    neutraliseUnreadRows(
      embedding.values,
      config.embeddingDim,
      teacher.encoder,
      rowReads(teacher.encoder, data.train),
    );
  const calibrated = calibrateWeights(config, weights, data.valid);
  const validation = calibrated.validation ?? result.validation;
  await saveCompressedModel(cmd.out, {
    base: { config: calibrated.config, encoder: teacher.encoder },
    weights,
    validation,
    history: result.history,
    bestEpoch: result.bestEpoch,
    data: cmd.data,
    seed,
    taskWeights: teacher.training.taskWeights,
    rows: { train: data.train.rows, valid: data.valid.rows },
    backend: cmd.backend,
    spec,
    compression: { method: "distill", teacher: cmd.teacher, teacherArch: teacher.config.arch, alpha },
  });
  return {
    teacher: evaluateWeights(teacher.config, teacher.weights, data.valid),
    student: validation,
    bestEpoch: result.bestEpoch,
    batchSize,
    epochs,
    parameters: { teacher: countParameters(teacher.weights), student: countParameters(weights) },
    rows: { train: data.train.rows, valid: data.valid.rows },
    sourceInSample: teacher.training.folds !== undefined,
  };
}

function countParameters(weights: Readonly<Record<string, { values: Float32Array }>>): number {
  return Object.values(weights).reduce((n, w) => n + w.values.length, 0);
}
