/**
 * DIR/checkpoint/: the training state after the last completed epoch (TrainingState below, which
 * ../train/train-network.ts fills and resumes from), written every epoch so `train --resume` can
 * continue an interrupted run, and removed once the finished model is saved. `fingerprint` ties
 * it to the run it came from: resuming with other data, spec or options is refused.
 */
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { TaskMetrics } from "../../shared/manifest.ts";
import { writeAtomicSync } from "../core/write-atomic.ts";
import { type NamedArray, type PackedEntry, packFloats, unpackFloats } from "./float-pack.ts";

/** One epoch of a training run, as the training loop logs it and a checkpoint keeps it. */
export interface EpochLog {
  epoch: number;
  trainLoss: number;
  /** Mean training loss per task (unweighted), and the weight each task had this epoch. */
  taskLosses: Record<string, number>;
  taskWeights: Record<string, number>;
  validation: Record<string, TaskMetrics>;
  /** The early-stopping score (higher is better; see ../train/early-stopping.ts). */
  score: number;
  seconds: number;
}

/**
 * Everything needed to continue a run after its last completed epoch: parameters, the best
 * epoch's values, optimiser accumulators, learned task weights, the history. The shuffling
 * generator and the step count are not stored: resuming replays the completed epochs' shuffles.
 */
export interface TrainingState {
  epoch: number;
  history: EpochLog[];
  best: { epoch: number; score: number };
  arrays: Record<string, NamedArray>;
  scalars: Record<string, number[]>;
}

interface CheckpointFile extends Omit<TrainingState, "arrays"> {
  format: "mtrank-checkpoint/1";
  fingerprint: string;
  arrays: PackedEntry[];
}

export function checkpointDir(modelDir: string): string {
  return join(modelDir, "checkpoint");
}

/** Synchronous (it runs inside the training loop); the JSON is renamed into place last. */
export function saveCheckpoint(modelDir: string, fingerprint: string, state: TrainingState): void {
  const dir = checkpointDir(modelDir);
  mkdirSync(dir, { recursive: true });
  const { index, bytes } = packFloats(state.arrays);
  const file: CheckpointFile = { format: "mtrank-checkpoint/1", fingerprint, ...state, arrays: index };
  writeAtomicSync(join(dir, "state.bin"), bytes);
  writeAtomicSync(join(dir, "state.json"), JSON.stringify(file));
}

export function loadCheckpoint(modelDir: string, fingerprint: string): TrainingState {
  const dir = checkpointDir(modelDir);
  if (!existsSync(join(dir, "state.json")))
    throw new Error(`--resume: ${dir} holds no checkpoint (nothing to resume)`);
  const file = JSON.parse(readFileSync(join(dir, "state.json"), "utf8")) as CheckpointFile;
  if (file.format !== "mtrank-checkpoint/1")
    throw new Error(`--resume: ${dir}/state.json has unknown format`);
  if (file.fingerprint !== fingerprint)
    throw new Error("--resume: the checkpoint comes from a run with other data, spec or options");
  const arrays = unpackFloats(
    file.arrays,
    readFileSync(join(dir, "state.bin")),
    `--resume: ${dir}/state.bin`,
  );
  const { format: _, fingerprint: __, arrays: ___, ...rest } = file;
  return { ...rest, arrays };
}

export function removeCheckpoint(modelDir: string): void {
  rmSync(checkpointDir(modelDir), { recursive: true, force: true });
}
