/**
 * The batch size and epoch count a run gets when the command names neither: they scale with the
 * training file so that a small file still gets enough optimiser steps, and a large one is not
 * planned for more passes than it uses.
 *
 * With the fixed 512 × 8 of the first releases, a 3,000-row file trained for 48 steps and a
 * 7,000-row one for 100, and the networks stayed under a one-hot logistic regression. Real public
 * sets, mmoe test AUC (test/tools/real-data.R; 512 × 8 → 128 × 40): NMES1988 emergency / hospital
 * 0.6501 / 0.6795 → 0.6639 / 0.6914 (logistic 0.6663 / 0.6932), Lending Club 0.6861 → 0.7210
 * (logistic 0.7230).
 *
 * The gain came from the smaller batches, not the long plans: early stopping kept epoch 2-6 of
 * 35 on NMES, 2-5 of 32 on Lending Club, 4-5 of 8-13 on Fertility, MovieLens and a census-sized
 * set, so the cosine schedule ended those runs near its peak rate. Planning 6 epochs (at least
 * 600 steps) instead keeps the test AUC (mmoe, mean of seeds 42/11/12, before → after: NMES
 * 0.6678 / 0.6932 → 0.6668 / 0.6937, Lending Club 0.7214 → 0.7223, Fertility 0.5920 / 0.5606 →
 * 0.5922 / 0.5606, MovieLens 0.7865 / 0.7937 → 0.7883 / 0.7942; the census-sized set of
 * bench:train's e2e group 0.9444 / 0.9830, seed 42 before 0.9435 / 0.9828) and ends the large
 * runs ~35 % sooner. Four epochs are too few: on Fertility (the same-sex-siblings interaction)
 * the third-child AUC fell 0.011. Batches stay at 512 rows from ~25k training rows up, and
 * epochs at 6 from ~52k.
 */

/** Largest and smallest default batch. */
export const MAX_BATCH = 512;
export const MIN_BATCH = 64;
/** A default batch is small enough for this many steps an epoch (down to MIN_BATCH). */
export const STEPS_PER_EPOCH = 48;
/** Default epochs: at least 6, and enough for MIN_STEPS steps, at most MAX_EPOCHS (early stopping ends some runs sooner). */
export const MIN_EPOCHS = 6;
export const MIN_STEPS = 600;
export const MAX_EPOCHS = 40;

/** The power of two in [MIN_BATCH, MAX_BATCH] that gives about STEPS_PER_EPOCH steps an epoch. */
export function defaultBatchSize(trainRows: number): number {
  let batch = MAX_BATCH;
  while (batch > MIN_BATCH && trainRows / batch < STEPS_PER_EPOCH) batch /= 2;
  return batch;
}

export function defaultEpochs(trainRows: number, batchSize: number): number {
  const stepsPerEpoch = Math.max(1, Math.ceil(trainRows / batchSize));
  return Math.min(MAX_EPOCHS, Math.max(MIN_EPOCHS, Math.ceil(MIN_STEPS / stepsPerEpoch)));
}

/**
 * From this many training rows a run splits each batch over two threads by default. Below it the
 * worker's start (~1-2 s: it loads tsx, tfjs and its backend) is a large share of the run, and a
 * small file's batches (64-256 rows) leave each thread too little work per step to gain.
 */
export const PARALLEL_ROWS = 20_000;

/**
 * The smallest batch a run splits over two threads by default: each thread's half has 256 rows.
 * Every step costs each thread a fixed ~15-20 ms of kernel dispatch and autodiff whatever its
 * rows, so smaller halves lose more to the split (posting parameters, averaging gradients) than
 * the second core gives. Census-shaped default MMoE, samples/s, one thread vs two, three
 * alternated runs each: batch 256 9,500-11,800 vs 8,400-8,500; batch 512 10,700-14,200 vs
 * 12,800-15,700.
 */
export const MIN_PARALLEL_BATCH = 512;

/** What decides whether a run can split its batches (./parallel-optimizer.ts checkWorkers). */
export interface ParallelHost {
  /** The backend the run trains on: only the wasm and cpu backends run one step per thread. */
  backend: string;
  /** A listwise ranking loss needs whole groups in one batch. */
  rankingLoss: number;
  /** Cores this process may use (os.availableParallelism()). */
  cores: number;
  /** Whether worker threads can start here (./parallel-optimizer.ts canStartWorkers). */
  workerThreads: boolean;
}

/**
 * Threads per step when the command names none: 2 on a host with two cores or more, for a file
 * of PARALLEL_ROWS training rows or more and batches of MIN_PARALLEL_BATCH rows or more, on a
 * backend that runs on the CPU, without a ranking loss; else 1. Two threads, not one per core:
 * each step posts the dense parameters to every worker and averages their gradients, and the
 * data-parallel gain measured on 2 cores (bench:train --group workers) is what a third thread
 * would have to beat on a larger host too.
 */
export function defaultWorkers(trainRows: number, batchSize: number, host: ParallelHost): number {
  const cpuBackend = host.backend === "wasm" || host.backend === "cpu";
  const parallel = host.workerThreads && host.cores >= 2 && host.rankingLoss === 0;
  const enough = trainRows >= PARALLEL_ROWS && batchSize >= MIN_PARALLEL_BATCH;
  return cpuBackend && parallel && enough ? 2 : 1;
}

/** The batch size, most epochs and threads of a run: those given, the defaults above for the rest. */
export function stepBudget(
  trainRows: number,
  given: { batchSize?: number | undefined; epochs?: number | undefined; workers?: number | undefined },
  host?: ParallelHost,
): { batchSize: number; epochs: number; workers: number } {
  const batchSize = given.batchSize ?? defaultBatchSize(trainRows);
  return {
    batchSize,
    epochs: given.epochs ?? defaultEpochs(trainRows, batchSize),
    workers: given.workers ?? (host ? defaultWorkers(trainRows, batchSize, host) : 1),
  };
}
