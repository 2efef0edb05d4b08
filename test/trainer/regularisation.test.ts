/** --l2, --embedding-l2, --kernel-l2: each penalty shrinks what it names and only that. */
import * as tf from "@tensorflow/tfjs";
import { beforeAll, describe, expect, it } from "vitest";
import type { NetworkConfig } from "../../trainer/models/network.ts";
import { DEFAULT_ARCH_OPTIONS } from "../../trainer/models/types.ts";
import { selectBackend } from "../../trainer/train/backend.ts";
import type { L2Penalty } from "../../trainer/train/batch-gradients.ts";
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
