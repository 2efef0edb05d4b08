/** Data-parallel training (--workers 2): the averaged two-shard step is the one-thread step. */
import { spawnSync } from "node:child_process";
import * as tf from "@tensorflow/tfjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { WeightingKind } from "../../trainer/artifact/trained-model.ts";
import { maxAbsDiff } from "../../trainer/core/metrics.ts";
import { initNetwork, type NetworkConfig } from "../../trainer/models/network.ts";
import type { Params } from "../../trainer/models/types.ts";
import { DEFAULT_ARCH_OPTIONS } from "../../trainer/models/types.ts";
import { selectBackend } from "../../trainer/train/backend.ts";
import type { OptimizerKind } from "../../trainer/train/dense-optimizer.ts";
import { createNetworkOptimizer } from "../../trainer/train/network-optimizer.ts";
import { prestartWorkers, spareWorkers, stopSpareWorkers } from "../../trainer/train/parallel-optimizer.ts";
import { taskWeighting } from "../../trainer/train/task-weighting.ts";
import { type LabelledBatch, type TrainOptions, trainNetwork } from "../../trainer/train/train-network.ts";
import { lcg } from "./lcg.ts";

beforeAll(async () => {
  await selectBackend("cpu");
});

const CONFIG: NetworkConfig = {
  arch: "mmoe",
  options: { ...DEFAULT_ARCH_OPTIONS, experts: 2, expertSizes: [12], tower: [6] },
  embeddingDim: 4,
  denseSize: 3,
  idSlots: 2,
  vocabSize: 60,
  heads: [
    { name: "click", type: "binary" },
    { name: "purchase", type: "binary" },
  ],
};

/** Slot 0 ids 0..29, slot 1 ids 30..59; click depends on both, purchase on click and a number. */
function syntheticData(rows: number, seed: number): LabelledBatch {
  const random = lcg(seed);
  const dense = Float32Array.from({ length: rows * CONFIG.denseSize }, () => random() * 2 - 1);
  const ids = Int32Array.from({ length: rows * CONFIG.idSlots }, (_, i) =>
    i % 2 === 0 ? Math.floor(random() * 30) : 30 + Math.floor(random() * 30),
  );
  const click = Float32Array.from({ length: rows }, (_, r) =>
    (ids[2 * r]! % 3 === 0 ? 1 : 0) + (dense[r * 3]! > 0.6 ? 1 : 0) > 0 ? 1 : 0,
  );
  const purchase = Float32Array.from(click, (c, r) => (c === 1 && dense[r * 3 + 1]! > 0 ? 1 : 0));
  return { rows, dense, ids, labels: { click, purchase } };
}

function values(params: Params): Record<string, Float32Array> {
  return Object.fromEntries(
    Object.entries(params).map(([k, v]) => [k, (v.dataSync() as Float32Array).slice()]),
  );
}

/** Three steps on three batches with `workers` threads: the parameters and losses after them. */
function threeSteps(
  workers: number,
  setup: {
    optimizer: OptimizerKind;
    weighting: WeightingKind;
    l2: number;
    taskWeights: Record<string, number>;
    /** Purchase labels missing (masked) on rows 0-11 of every 30: shard 0 has 3, shard 1 has 15. */
    missing?: boolean;
  },
) {
  const params = initNetwork(CONFIG, 5);
  const weighting = taskWeighting(setup.weighting, CONFIG.heads, setup.taskWeights);
  const optimizer = createNetworkOptimizer(params, CONFIG, {
    learningRate: 0.05,
    optimizer: setup.optimizer,
    taskWeights: setup.taskWeights,
    taskWeighting: setup.weighting,
    weighting,
    l2: setup.l2,
    workers,
  });
  const data = syntheticData(90, 7);
  if (setup.missing)
    data.labels.purchase = data.labels.purchase!.map((y, r) => (r % 30 < 12 ? Number.NaN : y));
  const losses: number[] = [];
  for (let s = 0; s < 3; s++) {
    // 30 rows: shards of 15, which read different (overlapping) sets of table rows.
    const idx = Int32Array.from({ length: 30 }, (_, i) => s * 30 + i);
    losses.push(optimizer.step(data, idx).total);
  }
  optimizer.sync();
  optimizer.dispose();
  const out = { values: values(params), losses, weighting: weighting.variables.map((v) => v.dataSync()[0]!) };
  tf.dispose(Object.values(params));
  weighting.dispose();
  return out;
}

describe("data-parallel steps (--workers 2)", () => {
  const setups = [
    { optimizer: "adam", weighting: "static", l2: 0.01, taskWeights: { click: 1, purchase: 2 } },
    { optimizer: "adagrad", weighting: "uncertainty", l2: 0, taskWeights: {} },
    { optimizer: "adagrad", weighting: "static", l2: 0.05, taskWeights: { purchase: 0 } },
    { optimizer: "adam", weighting: "uncertainty", l2: 0.01, taskWeights: {}, missing: true },
  ] as const;
  for (const setup of setups) {
    const masked = "missing" in setup ? ", purchase labels missing" : "";
    it(`average to the one-thread step (${setup.optimizer}, ${setup.weighting}, l2 ${setup.l2}${masked})`, () => {
      const one = threeSteps(1, setup);
      const two = threeSteps(2, setup);
      const fresh = initNetwork(CONFIG, 5);
      const initial = values(fresh);
      tf.dispose(Object.values(fresh));
      let moved = 0;
      for (const [name, v] of Object.entries(one.values)) {
        expect(maxAbsDiff(two.values[name]!, v), name).toBeLessThan(1e-4);
        moved = Math.max(moved, maxAbsDiff(v, initial[name]!));
      }
      // The comparison means something only if the steps moved the parameters well past 1e-4.
      expect(moved).toBeGreaterThan(1e-2);
      expect(maxAbsDiff(two.losses, one.losses)).toBeLessThan(1e-5);
      expect(maxAbsDiff(two.weighting, one.weighting)).toBeLessThan(1e-5);
      if (setup.weighting === "uncertainty") expect(Math.abs(one.weighting[0]!)).toBeGreaterThan(1e-3);
    });
  }
});

// Each case trains up to three small runs with a worker thread: ~2-3 s alone, past vitest's 5 s
// default on a 2-core machine busy with other work.
describe("training with --workers 2", { timeout: 60_000 }, () => {
  const train = syntheticData(600, 1);
  const valid = syntheticData(300, 2);
  const options: TrainOptions = {
    epochs: 2,
    batchSize: 64,
    learningRate: 0.02,
    seed: 3,
    patience: 5,
    taskWeights: {},
    taskWeighting: "dwa",
  };
  const runs: { values: Record<string, Float32Array>; auc: number[]; loss: number[] }[] = [];
  const run = (workers: number) => {
    const result = trainNetwork(CONFIG, train, valid, { ...options, workers });
    const out = {
      values: values(result.params),
      auc: CONFIG.heads.map((h) => result.validation[h.name]!.auc!),
      loss: result.history.map((e) => e.trainLoss),
    };
    tf.dispose(Object.values(result.params));
    return out;
  };
  afterAll(() => {
    runs.length = 0;
  });

  it("learns, with validation AUC close to one thread's", () => {
    const one = run(1);
    const two = run(2);
    runs.push(two);
    expect(two.loss[1]!).toBeLessThan(two.loss[0]!);
    expect(two.auc[0]!).toBeGreaterThan(0.75);
    two.auc.forEach((auc, i) => {
      expect(Math.abs(auc - one.auc[i]!)).toBeLessThan(0.02);
    });
  });

  it("gives identical parameters for the same seed", () => {
    const first = runs[0] ?? run(2);
    const second = run(2);
    for (const [name, v] of Object.entries(first.values)) expect(second.values[name], name).toEqual(v);
  });

  it("takes a worker started ahead of the run, with the same result; spares no run takes are stopped", () => {
    const first = runs[0] ?? run(2);
    prestartWorkers(tf.getBackend(), 1);
    expect(spareWorkers()).toBe(1);
    const ahead = run(2);
    expect(spareWorkers()).toBe(0);
    for (const [name, v] of Object.entries(first.values)) expect(ahead.values[name], name).toEqual(v);
    // A worker started for another backend waits; a run on this one starts its own.
    prestartWorkers("cpu-elsewhere", 1);
    expect(run(2).loss).toEqual(first.loss);
    expect(spareWorkers()).toBe(1);
    stopSpareWorkers();
    expect(spareWorkers()).toBe(0);
  });

  it("refuses the ranking loss and dense embedding updates with one line naming the flag", () => {
    const grouped = { ...train, groups: Uint32Array.from({ length: train.rows }, (_, r) => r >> 3) };
    expect(() => trainNetwork(CONFIG, grouped, valid, { ...options, workers: 2, rankingLoss: 0.5 })).toThrow(
      /^--workers: --ranking-loss needs whole groups in one batch .*; use --workers 1$/,
    );
    expect(() =>
      trainNetwork(CONFIG, train, valid, { ...options, workers: 2, embeddingUpdates: "dense" }),
    ).toThrow(/^--workers: --embedding-updates dense is not supported with 2 workers/);
    expect(() => trainNetwork(CONFIG, train, valid, { ...options, workers: 0 })).toThrow(
      /^--workers: expected a whole number of threads >= 1, got 0$/,
    );
  });
});

// Spawns tsx (2-5 s on a loaded 2-core machine), beyond vitest's 5 s default.
describe("train CLI --workers", { timeout: 60_000 }, () => {
  it("refuses --ranking-loss with --workers 2 in one line, before reading the data", () => {
    const result = spawnSync(
      "node_modules/.bin/tsx",
      [
        "trainer/cli/train.ts",
        ...[
          "--data",
          "/nonexistent.csv",
          "--spec",
          "fixtures/specs/criteo.json",
          "--out",
          "/tmp/mtrank-never",
        ],
        ...["--workers", "2", "--ranking-loss", "1"],
      ],
      { encoding: "utf8", timeout: 60_000 },
    );
    expect(result.status).toBe(1);
    expect(result.stderr.trim().split("\n")).toHaveLength(1);
    expect(result.stderr).toMatch(/^error: --workers: --ranking-loss needs whole groups in one batch/);
  });
});
