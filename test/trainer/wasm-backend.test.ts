/**
 * The wasm backend trains the network like the cpu backend: the kernels it lacks (the scatter-add
 * UnsortedSegmentSum, the gradient of the embedding gather) are registered, and losses and
 * gradients of every architecture match the cpu backend's.
 */
import * as tf from "@tensorflow/tfjs";
import { describe, expect, it } from "vitest";
import { initNetwork, type NetworkConfig, networkLogits } from "../../trainer/models/network.ts";
import { ARCHITECTURES } from "../../trainer/models/registry.ts";
import { DEFAULT_ARCH_OPTIONS } from "../../trainer/models/types.ts";
import { selectBackend } from "../../trainer/train/backend.ts";
import { type LabelledBatch, trainNetwork } from "../../trainer/train/train-network.ts";
import { lcg } from "./lcg.ts";
import { totalLoss } from "./total-loss.ts";

const N = 24;

function config(arch: string): NetworkConfig {
  return {
    arch,
    options: { ...DEFAULT_ARCH_OPTIONS, bottom: [16, 8], tower: [8], expertSizes: [8, 8] },
    embeddingDim: 4,
    denseSize: 5,
    idSlots: 3,
    vocabSize: 60,
    heads: [
      { name: "click", type: "binary" },
      { name: "purchase", type: "binary", given: "click" },
      { name: "dwell", type: "regression", transform: "log1p" },
    ],
  };
}

function data(rows: number, seed: number): LabelledBatch {
  const random = lcg(seed);
  const dense = Float32Array.from({ length: rows * 5 }, () => random() * 2 - 1);
  const ids = Int32Array.from({ length: rows * 3 }, (_, i) => 20 * (i % 3) + Math.floor(random() * 20));
  const click = Float32Array.from({ length: rows }, (_, r) =>
    dense[5 * r]! + (ids[3 * r]! % 2) > 0.5 ? 1 : 0,
  );
  const purchase = Float32Array.from(click, (c, r) => (c === 1 && dense[5 * r + 1]! > 0 ? 1 : 0));
  const dwell = Float32Array.from({ length: rows }, (_, r) => Math.abs(dense[5 * r + 2]!));
  return { rows, dense, ids, labels: { click, purchase, dwell } };
}

/** Loss and gradients of every parameter (the embedding's through the full-table gather). */
function lossAndGrads(
  cfg: NetworkConfig,
  batch: LabelledBatch,
): { loss: number; grads: Record<string, Float32Array> } {
  const params = initNetwork(cfg, 13);
  const result = tf.tidy(() => {
    const inputs = {
      dense: tf.tensor2d(batch.dense, [batch.rows, cfg.denseSize]),
      ids: tf.tensor2d(batch.ids, [batch.rows, cfg.idSlots], "int32"),
    };
    const labels = Object.fromEntries(
      Object.entries(batch.labels).map(([k, v]) => [k, tf.tensor2d(v, [batch.rows, 1])]),
    );
    const { value, grads } = tf.variableGrads(
      () => totalLoss(cfg.heads, networkLogits(params, cfg, inputs), labels, {}),
      Object.values(params),
    );
    return {
      loss: value.dataSync()[0]!,
      grads: Object.fromEntries(Object.entries(grads).map(([k, g]) => [k, g.dataSync() as Float32Array])),
    };
  });
  tf.dispose(Object.values(params));
  return result;
}

function maxRelDiff(a: Float32Array, b: Float32Array): number {
  let scale = 1e-6;
  for (const v of b) scale = Math.max(scale, Math.abs(v));
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m / scale;
}

describe("wasm backend", () => {
  it("is what auto picks when no native backend is installed", async () => {
    expect(["tensorflow", "wasm"]).toContain(await selectBackend("auto"));
    expect(await selectBackend("wasm")).toBe("wasm");
    expect(tf.getBackend()).toBe("wasm");
  });

  it("has an UnsortedSegmentSum: a scatter-add that skips ids outside [0, numSegments)", async () => {
    await selectBackend("wasm");
    const x = tf.tensor2d([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [5, 2]);
    const ids = tf.tensor1d([2, 0, 2, -1, 5], "int32");
    expect(Array.from(tf.unsortedSegmentSum(x, ids, 4).dataSync())).toEqual([3, 4, 0, 0, 6, 8, 0, 0]);
    const xi = tf.tensor1d([1, 2, 3], "int32");
    const sum = tf.unsortedSegmentSum(xi, tf.tensor1d([1, 1, 0], "int32"), 2);
    expect(sum.dtype).toBe("int32");
    expect(Array.from(sum.dataSync())).toEqual([3, 3]);
    tf.dispose([x, ids, xi, sum]);
  });

  it.each(Object.keys(ARCHITECTURES))("gives the cpu backend's loss and gradients: %s", async (arch) => {
    const cfg = config(arch);
    const batch = data(N, 3);
    await selectBackend("cpu");
    const cpu = lossAndGrads(cfg, batch);
    await selectBackend("wasm");
    const wasm = lossAndGrads(cfg, batch);
    expect(wasm.loss).toBeCloseTo(cpu.loss, 5);
    expect(Object.keys(wasm.grads).sort()).toEqual(Object.keys(cpu.grads).sort());
    expect(cpu.grads.embedding!.some((g) => g !== 0)).toBe(true);
    for (const [name, g] of Object.entries(cpu.grads)) {
      expect(maxRelDiff(wasm.grads[name]!, g), name).toBeLessThan(1e-4);
    }
  });

  it("trains (lazy Adam on the table, Adam on the rest) to the cpu backend's weights", async () => {
    const cfg = config("shared-bottom");
    const train = data(96, 1);
    const valid = data(48, 2);
    const options = { epochs: 2, batchSize: 16, learningRate: 0.01, seed: 4, patience: 3, taskWeights: {} };
    const run = async (backend: string) => {
      await selectBackend(backend);
      const result = trainNetwork(cfg, train, valid, options);
      const values = Object.fromEntries(
        Object.entries(result.params).map(([k, v]) => [k, Float32Array.from(v.dataSync() as Float32Array)]),
      );
      tf.dispose(Object.values(result.params));
      return values;
    };
    const cpu = await run("cpu");
    const wasm = await run("wasm");
    for (const [name, w] of Object.entries(cpu)) expect(maxRelDiff(wasm[name]!, w), name).toBeLessThan(1e-4);
  });
});
