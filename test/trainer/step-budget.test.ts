/** Default batch size and epochs: small files get smaller batches and more epochs. */
import { describe, expect, it } from "vitest";
import { canStartWorkers } from "../../trainer/train/parallel-optimizer.ts";
import {
  defaultBatchSize,
  defaultEpochs,
  MAX_BATCH,
  MAX_EPOCHS,
  MIN_BATCH,
  MIN_EPOCHS,
  MIN_PARALLEL_BATCH,
  MIN_STEPS,
  PARALLEL_ROWS,
  STEPS_PER_EPOCH,
  stepBudget,
} from "../../trainer/train/step-budget.ts";

describe("step budget", () => {
  it("large files keep 512-row batches and 6 epochs", () => {
    expect(MIN_EPOCHS).toBe(6);
    for (const rows of [52_000, 96_000, 160_000, 5_000_000]) {
      expect(defaultBatchSize(rows)).toBe(MAX_BATCH);
      expect(defaultEpochs(rows, MAX_BATCH)).toBe(MIN_EPOCHS);
    }
  });

  it("smaller files: batches halve to 64 and epochs grow to give the minimum steps", () => {
    expect(defaultBatchSize(40_000)).toBe(MAX_BATCH);
    expect(defaultEpochs(40_000, MAX_BATCH)).toBe(8);
    expect(defaultBatchSize(6_210)).toBe(128);
    expect(defaultBatchSize(2_775)).toBe(MIN_BATCH);
    expect(defaultBatchSize(50)).toBe(MIN_BATCH);
    const rows = 6_210;
    const batch = defaultBatchSize(rows);
    const epochs = defaultEpochs(rows, batch);
    expect(epochs * Math.ceil(rows / batch)).toBeGreaterThanOrEqual(MIN_STEPS);
    expect((epochs - 1) * Math.ceil(rows / batch)).toBeLessThan(MIN_STEPS);
  });

  it("never more than MAX_EPOCHS, never fewer than MIN_EPOCHS", () => {
    for (const rows of [1, 10, 100, 1_000, 30_000, 60_000, 1e7]) {
      const e = defaultEpochs(rows, defaultBatchSize(rows));
      expect(e).toBeGreaterThanOrEqual(MIN_EPOCHS);
      expect(e).toBeLessThanOrEqual(MAX_EPOCHS);
    }
    expect(defaultEpochs(100, 64)).toBe(MAX_EPOCHS);
  });

  it("splits batches of MIN_PARALLEL_BATCH rows over two threads from PARALLEL_ROWS rows on a CPU backend with two cores", () => {
    const host = { backend: "wasm", rankingLoss: 0, cores: 2, workerThreads: true };
    const full = STEPS_PER_EPOCH * MIN_PARALLEL_BATCH; // the first file the default batch reaches it
    expect(full).toBeGreaterThanOrEqual(PARALLEL_ROWS);
    expect(stepBudget(full, {}, host)).toMatchObject({ batchSize: MIN_PARALLEL_BATCH, workers: 2 });
    // Smaller default batches stay on one thread, and so do smaller batches given on large files.
    expect(stepBudget(full - 1, {}, host)).toMatchObject({ batchSize: MIN_PARALLEL_BATCH / 2, workers: 1 });
    expect(stepBudget(1e6, { batchSize: MIN_PARALLEL_BATCH / 2 }, host).workers).toBe(1);
    expect(stepBudget(1e6, { batchSize: 2 * MIN_PARALLEL_BATCH }, host).workers).toBe(2);
    // A batch given large enough on a file under PARALLEL_ROWS: one thread (the worker's start).
    expect(stepBudget(PARALLEL_ROWS - 1, { batchSize: MIN_PARALLEL_BATCH }, host).workers).toBe(1);
    expect(stepBudget(PARALLEL_ROWS, { batchSize: MIN_PARALLEL_BATCH }, host).workers).toBe(2);
    expect(stepBudget(1e6, {}, { ...host, backend: "cpu", cores: 64 }).workers).toBe(2);
    // One thread where a second cannot start or cannot help.
    expect(stepBudget(1e6, {}, { ...host, cores: 1 }).workers).toBe(1);
    expect(stepBudget(1e6, {}, { ...host, backend: "webgpu" }).workers).toBe(1);
    expect(stepBudget(1e6, {}, { ...host, backend: "tensorflow" }).workers).toBe(1);
    expect(stepBudget(1e6, {}, { ...host, rankingLoss: 0.5 }).workers).toBe(1);
    expect(stepBudget(1e6, {}, { ...host, workerThreads: false }).workers).toBe(1);
    // A given count wins either way; without a host, one thread.
    expect(stepBudget(10, { workers: 3 }, host).workers).toBe(3);
    expect(stepBudget(1e6, { workers: 1 }, host).workers).toBe(1);
    expect(stepBudget(1e6, {}).workers).toBe(1);
  });

  it("knows worker threads can start from the sources (tsx and the worker file are there)", () => {
    expect(canStartWorkers()).toBe(true);
  });
});
