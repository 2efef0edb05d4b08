/** Task weighting (static, uncertainty, DWA) and the listwise ranking loss. */
import * as tf from "@tensorflow/tfjs";
import { beforeAll, describe, expect, it } from "vitest";
import type { NetworkConfig } from "../../trainer/models/network.ts";
import { DEFAULT_ARCH_OPTIONS, type HeadSpec } from "../../trainer/models/types.ts";
import { selectBackend } from "../../trainer/train/backend.ts";
import { listwiseLoss } from "../../trainer/train/loss.ts";
import { taskWeighting } from "../../trainer/train/task-weighting.ts";
import { type LabelledBatch, trainNetwork } from "../../trainer/train/train-network.ts";
import { lcg } from "./lcg.ts";

beforeAll(async () => {
  await selectBackend("cpu");
});

const HEADS: HeadSpec[] = [
  { name: "a", type: "binary" },
  { name: "b", type: "regression" },
];

function scalars(values: Record<string, number>): Record<string, tf.Scalar> {
  return Object.fromEntries(Object.entries(values).map(([k, v]) => [k, tf.scalar(v)]));
}

describe("taskWeighting", () => {
  it("static: Σ w·L with the given weights; a zero weight drops the task", () => {
    const w = taskWeighting("static", HEADS, { a: 2, b: 0 });
    expect(w.combine(scalars({ a: 1.5, b: 10 })).dataSync()[0]).toBeCloseTo(3, 6);
    expect(w.current()).toEqual({ a: 2 });
    expect(w.variables).toHaveLength(0);
  });

  it("uncertainty: the learned weight of each task settles at 1/(2L), the noisier task weighing less", () => {
    const w = taskWeighting("uncertainty", HEADS, {});
    const losses = { a: 2, b: 0.1 };
    const adam = tf.train.adam(0.05);
    for (let i = 0; i < 1500; i++) adam.minimize(() => w.combine(scalars(losses)), false, w.variables);
    // d/ds (c·e^-s·L + s/2) = 0  ->  c·e^-s = 1/(2L)
    const current = w.current();
    expect(current.a).toBeCloseTo(1 / (2 * 2), 2);
    expect(current.b).toBeCloseTo(1 / (2 * 0.1), 1);
    adam.dispose();
    w.dispose();
  });

  it("dwa: after two epochs the task whose loss fell least gets more weight; weights sum to the task count", () => {
    const w = taskWeighting("dwa", HEADS, {});
    expect(w.current()).toEqual({ a: 1, b: 1 });
    w.endEpoch({ a: 1, b: 1 });
    expect(w.current()).toEqual({ a: 1, b: 1 });
    w.endEpoch({ a: 0.5, b: 1 });
    const c = w.current();
    expect(c.b!).toBeGreaterThan(c.a!);
    expect(c.a! + c.b!).toBeCloseTo(2, 9);
    expect(c.b! / c.a!).toBeCloseTo(Math.exp((1 - 0.5) / 2), 9);
    expect(w.combine(scalars({ a: 1, b: 1 })).dataSync()[0]).toBeCloseTo(2, 5);
  });
});

describe("listwiseLoss", () => {
  it("is −Σ y·log softmax within each group over the positives", () => {
    const z = [1, 2, 0, 0.5, -1];
    const y = [0, 1, 0, 1, 1];
    const seg = [0, 0, 0, 1, 1];
    const value = listwiseLoss(
      tf.tensor2d(z, [5, 1]),
      tf.tensor2d(y, [5, 1]),
      tf.tensor1d(seg, "int32"),
      2,
    ).dataSync()[0]!;
    const lse = (xs: number[]) => Math.log(xs.reduce((s, x) => s + Math.exp(x), 0));
    const g0 = lse([1, 2, 0]);
    const g1 = lse([0.5, -1]);
    const expected = -(2 - g0 + (0.5 - g1) + (-1 - g1)) / 3;
    expect(value).toBeCloseTo(expected, 5);
  });

  it("stays finite when one group sits far below the batch maximum", () => {
    const value = listwiseLoss(
      tf.tensor2d([60, 59, -60, -61], [4, 1]),
      tf.tensor2d([1, 0, 1, 0], [4, 1]),
      tf.tensor1d([0, 0, 1, 1], "int32"),
      2,
    ).dataSync()[0]!;
    expect(Number.isFinite(value)).toBe(true);
  });
});

const CONFIG: NetworkConfig = {
  arch: "shared-bottom",
  options: { ...DEFAULT_ARCH_OPTIONS, bottom: [16], tower: [8] },
  embeddingDim: 4,
  denseSize: 2,
  idSlots: 1,
  vocabSize: 10,
  heads: [
    { name: "click", type: "binary" },
    { name: "buy", type: "binary" },
  ],
};

/** Lists of 8 rows; click follows dense[0] within a list, buy is rarer and follows the id. */
function grouped(rows: number, seed: number): LabelledBatch {
  const random = lcg(seed);
  const dense = Float32Array.from({ length: rows * 2 }, () => random() * 2 - 1);
  const ids = Int32Array.from({ length: rows }, () => Math.floor(random() * 10));
  const click = Float32Array.from({ length: rows }, (_, r) =>
    dense[2 * r]! + 0.3 * (random() - 0.5) > 0.4 ? 1 : 0,
  );
  const buy = Float32Array.from({ length: rows }, (_, r) => (click[r]! && ids[r]! < 3 ? 1 : 0));
  const groups = Uint32Array.from({ length: rows }, (_, r) => 1000 + Math.floor(r / 8));
  return { rows, dense, ids, labels: { click, buy }, groups };
}

describe("trainNetwork with weighting and a ranking loss", () => {
  const options = { epochs: 3, batchSize: 64, learningRate: 0.01, seed: 3, patience: 5, taskWeights: {} };

  it("logs per-task losses and the weights each epoch had; uncertainty weights move", () => {
    const result = trainNetwork(CONFIG, grouped(1600, 1), grouped(400, 2), {
      ...options,
      taskWeighting: "uncertainty",
    });
    const first = result.history[0]!;
    const last = result.history[result.history.length - 1]!;
    expect(Object.keys(first.taskLosses)).toEqual(["click", "buy"]);
    expect(first.taskLosses.click!).toBeGreaterThan(0);
    expect(Math.abs(last.taskWeights.click! - 1)).toBeGreaterThan(0.01);
    expect(result.validation.click!.auc!).toBeGreaterThan(0.8);
    tf.dispose(Object.values(result.params));
  });

  it("trains with whole groups per batch under a ranking loss, and refuses one without groups", () => {
    const result = trainNetwork(CONFIG, grouped(1600, 1), grouped(400, 2), { ...options, rankingLoss: 1 });
    expect(result.validation.click!.auc!).toBeGreaterThan(0.8);
    tf.dispose(Object.values(result.params));
    const { groups: _, ...ungrouped } = grouped(64, 1);
    expect(() => trainNetwork(CONFIG, ungrouped, grouped(64, 2), { ...options, rankingLoss: 1 })).toThrow(
      /--ranking-loss: the dataset spec has no group column/,
    );
  });
});
