/** Sparse updates of the embedding table: row lookup, the lazy Adam and sparse Adagrad rules, and training with them. */
import * as tf from "@tensorflow/tfjs";
import { beforeAll, describe, expect, it } from "vitest";
import { maxAbsDiff } from "../../trainer/core/metrics.ts";
import { initNetwork, type NetworkConfig, networkLogits } from "../../trainer/models/network.ts";
import { DEFAULT_ARCH_OPTIONS } from "../../trainer/models/types.ts";
import { selectBackend } from "../../trainer/train/backend.ts";
import { denseOptimizer } from "../../trainer/train/dense-optimizer.ts";
import { SparseOptimizer } from "../../trainer/train/sparse-optimizer.ts";
import { type LabelledBatch, trainNetwork } from "../../trainer/train/train-network.ts";
import { lcg } from "./lcg.ts";
import { totalLoss } from "./total-loss.ts";

beforeAll(async () => {
  await selectBackend("cpu");
});

let tables = 0;

function table(rows: number, dim: number, seed: number): tf.Variable {
  return tf.variable(tf.randomUniform([rows, dim], -1, 1, "float32", seed), true, `table-${tables++}`);
}

describe("SparseOptimizer.lookup", () => {
  it("lists a batch's unique rows in order of first appearance and renumbers the ids into them", () => {
    const v = table(10, 2, 1);
    const lazy = new SparseOptimizer(v, { learningRate: 0.1 });
    const all = v.dataSync();
    const { rows, local, values } = lazy.lookup(Int32Array.from([7, 3, 7, 0, 3, 9]));
    expect(Array.from(rows)).toEqual([7, 3, 0, 9]);
    expect(Array.from(local)).toEqual([0, 1, 0, 2, 1, 3]);
    expect(Array.from(values)).toEqual([...rows].flatMap((r) => [all[2 * r]!, all[2 * r + 1]!]));
    // The row -> slot map is cleared after each lookup: a second batch starts afresh.
    expect(Array.from(lazy.lookup(Int32Array.from([9, 9, 1])).rows)).toEqual([9, 1]);
    v.dispose();
  });

  it("refuses an id outside the table", () => {
    const v = table(4, 2, 2);
    const lazy = new SparseOptimizer(v, { learningRate: 0.1 });
    expect(() => lazy.lookup(Int32Array.from([1, 4]))).toThrow(/id 4 is outside the table \[0, 4\)/);
    expect(() => lazy.lookup(Int32Array.from([-1]))).toThrow(/outside the table/);
    v.dispose();
  });
});

describe("SparseOptimizer.apply", () => {
  it("equals tf.train.adam when every step touches every row", () => {
    const rows = 6;
    const dim = 3;
    const dense = table(rows, dim, 3);
    const sparse = table(rows, dim, 3);
    const adam = tf.train.adam(0.05);
    const lazy = new SparseOptimizer(sparse, { learningRate: 0.05 });
    const all = Int32Array.from({ length: rows }, (_, i) => i);
    for (let step = 0; step < 12; step++) {
      const grad = tf.randomNormal([rows, dim], 0, 1, "float32", 100 + step);
      adam.applyGradients([{ name: dense.name, tensor: grad }]);
      lazy.apply(all, grad.dataSync() as Float32Array);
      grad.dispose();
    }
    lazy.writeBack();
    // The values moved by ~0.5; tfjs keeps β^t and 1-β^t in float32 (1 - 0.999 is off by 1e-5
    // relative there), lazy Adam in float64: they agree to a few 1e-6.
    expect(maxAbsDiff(sparse.dataSync(), dense.dataSync())).toBeLessThan(1e-5);
    adam.dispose();
    tf.dispose([dense, sparse]);
  });

  it("equals tf.train.adagrad with rule adagrad when every step touches every row, at a changing rate", () => {
    const rows = 5;
    const dim = 2;
    const dense = table(rows, dim, 5);
    const sparse = table(rows, dim, 5);
    const initial = Float32Array.from(sparse.dataSync());
    const { optimizer, setLearningRate } = denseOptimizer("adagrad", 0.1);
    const lazy = new SparseOptimizer(sparse, { learningRate: 0.1, rule: "adagrad" });
    const all = Int32Array.from({ length: rows }, (_, i) => i);
    for (let step = 0; step < 10; step++) {
      const lr = 0.1 / (1 + step);
      setLearningRate(lr);
      lazy.setLearningRate(lr);
      const grad = tf.randomNormal([rows, dim], 0, 1, "float32", 200 + step);
      optimizer.applyGradients([{ name: dense.name, tensor: grad }]);
      lazy.apply(all, grad.dataSync() as Float32Array);
      grad.dispose();
    }
    lazy.writeBack();
    expect(maxAbsDiff(sparse.dataSync(), dense.dataSync())).toBeLessThan(1e-5);
    // and the rows did move
    expect(maxAbsDiff(sparse.dataSync(), initial)).toBeGreaterThan(0.05);
    optimizer.dispose();
    tf.dispose([dense, sparse]);
  });

  it("gives the rows adagradRows marks Adagrad at its rate and the others lazy Adam", () => {
    const rows = 6;
    const dim = 2;
    const mask = Uint8Array.of(1, 0, 0, 1, 0, 1);
    const [mixed, adam, adagrad] = [1, 2, 3].map(() => table(rows, dim, 8));
    const both = new SparseOptimizer(mixed!, {
      learningRate: 0.01,
      adagradRows: mask,
      adagradLearningRate: 0.3,
    });
    const lazyAdam = new SparseOptimizer(adam!, { learningRate: 0.01 });
    const lazyAdagrad = new SparseOptimizer(adagrad!, { learningRate: 0.3, rule: "adagrad" });
    for (let step = 0; step < 8; step++) {
      // A schedule scales both rates.
      const scale = 1 / (1 + step);
      both.setLearningRate(0.01 * scale);
      lazyAdam.setLearningRate(0.01 * scale);
      lazyAdagrad.setLearningRate(0.3 * scale);
      const touched = Int32Array.from([0, 1, 3, 4, 5].filter((r) => (r + step) % 4 !== 0));
      const grad = tf.randomNormal([touched.length, dim], 0, 1, "float32", 300 + step);
      const g = grad.dataSync() as Float32Array;
      for (const optimizer of [both, lazyAdam, lazyAdagrad]) optimizer.apply(touched, g);
      grad.dispose();
    }
    for (const optimizer of [both, lazyAdam, lazyAdagrad]) optimizer.writeBack();
    const [m, a, g] = [mixed, adam, adagrad].map((t) => t!.dataSync() as Float32Array);
    for (let row = 0; row < rows; row++) {
      const expected = mask[row] ? g! : a!;
      const slice = (x: Float32Array) => x.subarray(row * dim, (row + 1) * dim);
      expect(maxAbsDiff(slice(m!), slice(expected)), `row ${row}`).toBeLessThan(1e-6);
    }
    expect(maxAbsDiff(g!, a!)).toBeGreaterThan(0.01);
    tf.dispose([mixed!, adam!, adagrad!]);
  });

  it("leaves rows outside the batch alone and bias-corrects by the global step", () => {
    const v = table(3, 1, 4);
    const w0 = Array.from(v.dataSync());
    const lr = 0.1;
    const lazy = new SparseOptimizer(v, { learningRate: lr });
    // Row 0 learns at steps 1 and 3, row 1 at step 2 only, row 2 never.
    lazy.apply(Int32Array.from([0]), Float32Array.from([1]));
    lazy.apply(Int32Array.from([1]), Float32Array.from([-2]));
    lazy.apply(Int32Array.from([0]), Float32Array.from([0.5]));
    const [b1, b2, eps] = [0.9, 0.999, 1e-7];
    const adamStep = (w: number, m: number, v: number, t: number) =>
      w - (lr * (m / (1 - b1 ** t))) / (Math.sqrt(v / (1 - b2 ** t)) + eps);
    // Row 0: moments updated at steps 1 and 3 only (no decay at step 2).
    const m1 = (1 - b1) * 1;
    const v1 = (1 - b2) * 1;
    const w1 = adamStep(w0[0]!, m1, v1, 1);
    const m3 = b1 * m1 + (1 - b1) * 0.5;
    const v3 = b2 * v1 + (1 - b2) * 0.25;
    const row0 = adamStep(w1, m3, v3, 3);
    // Row 1: its first update, at global step 2.
    const row1 = adamStep(w0[1]!, (1 - b1) * -2, (1 - b2) * 4, 2);
    const got = lazy.values();
    expect(got[0]).toBeCloseTo(row0, 6);
    expect(got[1]).toBeCloseTo(row1, 6);
    expect(got[2]).toBe(w0[2]);
    expect(lazy.step).toBe(3);
    v.dispose();
  });
});

// ---- Training with lazy Adam ------------------------------------------------------------------

const CONFIG: NetworkConfig = {
  arch: "shared-bottom",
  options: { ...DEFAULT_ARCH_OPTIONS, bottom: [16], tower: [8] },
  embeddingDim: 4,
  denseSize: 3,
  idSlots: 2,
  vocabSize: 40,
  heads: [{ name: "click", type: "binary" }],
};

function syntheticData(rows: number, seed: number): LabelledBatch {
  const random = lcg(seed);
  const dense = Float32Array.from({ length: rows * CONFIG.denseSize }, () => random() * 2 - 1);
  // Slot 0 uses ids 0..19, slot 1 ids 20..39 (one shared table, as the encoder lays it out).
  const ids = Int32Array.from({ length: rows * CONFIG.idSlots }, (_, i) =>
    i % 2 === 0 ? Math.floor(random() * 20) : 20 + Math.floor(random() * 20),
  );
  const click = Float32Array.from({ length: rows }, (_, r) => (ids[2 * r]! % 3 === 0 ? 1 : 0));
  return { rows, dense, ids, labels: { click } };
}

describe("training with lazy Adam", () => {
  it("the gradient of the batch's own rows is the dense table gradient at those rows", () => {
    const params = initNetwork(CONFIG, 9);
    const data = syntheticData(32, 5);
    const lazy = new SparseOptimizer(params.embedding!, { learningRate: 0.01 });
    const lookup = lazy.lookup(data.ids);
    const dense = tf.tensor2d(data.dense, [32, CONFIG.denseSize]);
    const labels = { click: tf.tensor2d(data.labels.click!, [32, 1]) };
    const loss = (p: typeof params, ids: Int32Array) => () =>
      totalLoss(
        CONFIG.heads,
        networkLogits(p, CONFIG, { dense, ids: tf.tensor2d(ids, [32, CONFIG.idSlots], "int32") }),
        labels,
        {},
      );
    const full = tf.variableGrads(loss(params, data.ids), [params.embedding!]).grads.embedding!.dataSync();
    const small = tf.tensor2d(lookup.values, [lookup.rows.length, CONFIG.embeddingDim]);
    const smallParams = { ...params, embedding: small as unknown as tf.Variable };
    const rowGrad = tf.engine().gradients(loss(smallParams, lookup.local), [small]).grads[0]!.dataSync();
    const expected = Array.from(lookup.rows).flatMap((r) =>
      Array.from(full.subarray(r * CONFIG.embeddingDim, (r + 1) * CONFIG.embeddingDim)),
    );
    expect(maxAbsDiff(rowGrad, expected)).toBeLessThan(1e-7);
    // Rows no id of the batch names get no gradient in the dense version either.
    const touched = new Set(lookup.rows);
    for (let r = 0; r < CONFIG.vocabSize; r++) {
      if (!touched.has(r)) expect(full[r * CONFIG.embeddingDim]).toBe(0);
    }
    tf.dispose([...Object.values(params), dense, small, labels.click]);
  });

  it("learns, and gives identical weights for the same seed", () => {
    const train = syntheticData(256, 1);
    const valid = syntheticData(128, 2);
    const options = { epochs: 3, batchSize: 32, learningRate: 0.02, seed: 3, patience: 5, taskWeights: {} };
    const first = trainNetwork(CONFIG, train, valid, options);
    const firstValues = Object.fromEntries(
      Object.entries(first.params).map(([k, v]) => [k, v.dataSync().slice()]),
    );
    tf.dispose(Object.values(first.params));
    const second = trainNetwork(CONFIG, train, valid, options);
    for (const [k, v] of Object.entries(second.params)) expect(v.dataSync()).toEqual(firstValues[k]);
    expect(first.history.at(-1)!.trainLoss).toBeLessThan(first.history[0]!.trainLoss);
    expect(first.validation.click!.auc).toBeGreaterThan(0.9);
    tf.dispose(Object.values(second.params));
    // The embedding variable holds the trained table (written back), not its initial values.
    const initial = initNetwork(CONFIG, 3);
    expect(maxAbsDiff(initial.embedding!.dataSync(), firstValues.embedding!)).toBeGreaterThan(1e-3);
    tf.dispose(Object.values(initial));
  });
});
