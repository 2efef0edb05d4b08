/**
 * --l2, --embedding-l2, --kernel-l2: each penalty shrinks what it names, and an embedding row's
 * share is divided by how many times the batch reads it. The kernels' penalty applied by the
 * dense update (off the autodiff tape) trains as the same penalty on the tape does.
 */
import * as tf from "@tensorflow/tfjs";
import { beforeAll, describe, expect, it } from "vitest";
import { initNetwork, type NetworkConfig } from "../../trainer/models/network.ts";
import { DEFAULT_ARCH_OPTIONS } from "../../trainer/models/types.ts";
import { selectBackend } from "../../trainer/train/backend.ts";
import {
  batchObjective,
  batchTensors,
  type L2Penalty,
  readShares,
} from "../../trainer/train/batch-gradients.ts";
import { taskWeighting } from "../../trainer/train/task-weighting.ts";
import { type LabelledBatch, trainNetwork } from "../../trainer/train/train-network.ts";
import { lcg } from "./lcg.ts";

beforeAll(async () => {
  await selectBackend("cpu");
});

const CONFIG: NetworkConfig = {
  arch: "shared-bottom",
  options: { ...DEFAULT_ARCH_OPTIONS, bottom: [16], tower: [8] },
  embeddingDim: 4,
  denseSize: 2,
  idSlots: 1,
  vocabSize: 20,
  heads: [{ name: "click", type: "binary" }],
};

function data(rows: number, seed: number): LabelledBatch {
  const random = lcg(seed);
  const dense = Float32Array.from({ length: rows * 2 }, () => random() * 2 - 1);
  const ids = Int32Array.from({ length: rows }, () => Math.floor(random() * 20));
  const click = Float32Array.from({ length: rows }, (_, r) => (dense[2 * r]! + (ids[r]! % 2) > 0.5 ? 1 : 0));
  return { rows, dense, ids, labels: { click } };
}

function squaredNorm(params: Record<string, tf.Variable>, pick: (name: string) => boolean): number {
  let sum = 0;
  for (const [name, v] of Object.entries(params)) if (pick(name)) for (const x of v.dataSync()) sum += x * x;
  return sum;
}

const OPTIONS = { epochs: 3, batchSize: 32, learningRate: 0.01, seed: 4, patience: 5, taskWeights: {} };

function norms(l2: L2Penalty | number): { kernels: number; table: number } {
  const result = trainNetwork(CONFIG, data(600, 1), data(200, 2), { ...OPTIONS, l2 });
  const kernels = squaredNorm(result.params, (n) => n.endsWith("/kernel"));
  const table = squaredNorm(result.params, (n) => n === "embedding");
  tf.dispose(Object.values(result.params));
  return { kernels, table };
}

describe("l2", () => {
  it("a number: ends with smaller kernels and embedding rows than the same run without it", () => {
    const [off, on] = [norms(0), norms(0.05)];
    expect(on.kernels).toBeLessThan(0.8 * off.kernels);
    expect(on.table).toBeLessThan(0.8 * off.table);
  });

  it("on the embedding rows or on the kernels alone shrinks only those", () => {
    const off = norms(0);
    const rows = norms({ embedding: 0.05, kernel: 0 });
    const kernels = norms({ embedding: 0, kernel: 0.05 });
    expect(rows.table).toBeLessThan(0.8 * off.table);
    expect(kernels.kernels).toBeLessThan(0.8 * off.kernels);
    // Each leaves the other part larger than the penalty on that part does.
    expect(rows.kernels).toBeGreaterThan(1.2 * kernels.kernels);
    expect(kernels.table).toBeGreaterThan(1.2 * rows.table);
  });
});

describe("kernel penalty off the tape", () => {
  it("trains the weights and reports the losses of the same penalty on the tape", () => {
    // No categorical input: the sparse-rows path (JS Adam, kernels' λ·w added to the gradient)
    // and the whole-table path (tfjs's Adam, λ/2·Σw² in the objective) take the same steps.
    const config: NetworkConfig = { ...CONFIG, idSlots: 0, vocabSize: 0 };
    const run = (embeddingUpdates: "sparse" | "dense", l2 = 0.05, epochs = 2) => {
      const result = trainNetwork(config, data(400, 5), data(100, 6), {
        ...OPTIONS,
        epochs,
        l2: { embedding: 0, kernel: l2 },
        embeddingUpdates,
      });
      const weights = Object.fromEntries(
        Object.entries(result.params).map(([name, v]) => [name, Float32Array.from(v.dataSync())]),
      );
      tf.dispose(Object.values(result.params));
      return { weights, losses: result.history.map((h) => h.trainLoss) };
    };
    const off = run("sparse");
    const on = run("dense");
    for (const [name, b] of Object.entries(on.weights)) {
      const a = off.weights[name]!;
      let diff = 0;
      for (let i = 0; i < a.length; i++) diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
      expect(diff, name).toBeLessThan(1e-4);
    }
    expect(off.losses).toEqual(on.losses.map((loss) => expect.closeTo(loss, 5)));
    // The reported loss carries the penalty: without it the same first epoch reports less.
    expect(run("sparse", 0, 1).losses[0]).toBeLessThan(off.losses[0]!);
  });
});

describe("embedding penalty per read", () => {
  it("readShares: 1 / reads for each row read, 0 for the others", () => {
    expect(readShares(Int32Array.from([2, 0, 2, 2, 3, 0]), 5)).toEqual(
      Float32Array.from([0.5, 0, 1 / 3, 1, 0]),
    );
  });

  it("the objective adds λ/2·|w|² / reads for each row the batch reads", () => {
    const objective = batchObjective(CONFIG, taskWeighting("static", CONFIG.heads, {}), 0, {
      embedding: 0.5,
      kernel: 0,
    });
    const batch = data(6, 3);
    batch.ids.set([1, 1, 1, 4, 1, 7]); // row 1 four times, rows 4 and 7 once
    const idx = Int32Array.from({ length: 6 }, (_, i) => i);
    const params = initNetwork(CONFIG, 1);
    const penalty = tf.tidy(() => {
      const withShares = objective(params, batchTensors(CONFIG, batch, idx, CONFIG.vocabSize)).total;
      const none = batchObjective(CONFIG, taskWeighting("static", CONFIG.heads, {}), 0, {
        embedding: 0,
        kernel: 0,
      });
      return withShares.sub(none(params, batchTensors(CONFIG, batch, idx)).total).dataSync()[0]!;
    });
    const table = params.embedding!.arraySync() as number[][];
    const sq = (r: number) => table[r]!.reduce((a, w) => a + w * w, 0);
    expect(penalty).toBeCloseTo((0.5 / 2) * (sq(1) / 4 + sq(4) + sq(7)), 5);
    tf.dispose(Object.values(params));
  });
});
