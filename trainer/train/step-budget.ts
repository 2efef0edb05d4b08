/**
 * The batch size and epoch count a run gets when the command names neither: they scale with the
 * training file so that a small file still gets enough optimiser steps.
 *
 * With the fixed 512 × 8 of the first releases, a 3,000-row file trained for 48 steps and a
 * 7,000-row one for 100, and the networks stayed under a one-hot logistic regression. Real public
 * sets, mmoe test AUC (test/tools/real-data.R; 512 × 8 → 128 × 40): NMES1988 emergency / hospital
 * 0.6501 / 0.6795 → 0.6639 / 0.6914 (logistic 0.6663 / 0.6932), Lending Club 0.6861 → 0.7210
 * (logistic 0.7230). Batches stay at 512 rows from ~25k training rows up, and epochs at 8 from
 * ~96k (a 90k-row file gets 9).
 */

/** Largest and smallest default batch. */
export const MAX_BATCH = 512;
export const MIN_BATCH = 64;
/** A default batch is small enough for this many steps an epoch (down to MIN_BATCH). */
export const STEPS_PER_EPOCH = 48;
/** Default epochs: at least 8, and enough for MIN_STEPS steps, at most MAX_EPOCHS (early stopping ends most runs sooner). */
export const MIN_EPOCHS = 8;
export const MIN_STEPS = 1_500;
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

/** The batch size and most epochs of a run: those given, the defaults above for the rest. */
export function stepBudget(
  trainRows: number,
  given: { batchSize?: number | undefined; epochs?: number | undefined },
): { batchSize: number; epochs: number } {
  const batchSize = given.batchSize ?? defaultBatchSize(trainRows);
  return { batchSize, epochs: given.epochs ?? defaultEpochs(trainRows, batchSize) };
}
