/**
 * Training arguments' defaults (trainer/train/train-args.ts): the learning rate follows the
 * optimiser, and Adagrad at its default rate learns what Adam learns at its own; the embedding
 * table has an optimiser and a rate of its own (by default sparse Adagrad on the rows of id-like
 * features beside Adam, at a rate in proportion to the batch), which the network optimiser honours.
 */
import * as tf from "@tensorflow/tfjs";
import { beforeAll, describe, expect, it } from "vitest";
import type { EncoderState } from "../../shared/encoder/state.ts";
import { initNetwork } from "../../trainer/models/network.ts";
import { selectBackend } from "../../trainer/train/backend.ts";
import { DEFAULT_LEARNING_RATES, type OptimizerKind } from "../../trainer/train/dense-optimizer.ts";
import { embeddingOptions } from "../../trainer/train/embedding-rules.ts";
import { createNetworkOptimizer } from "../../trainer/train/network-optimizer.ts";
import { defaultEmbeddingLearningRate, resolveTrainArgs } from "../../trainer/train/train-args.ts";
import { trainNetwork } from "../../trainer/train/train-network.ts";
import { clickBuyConfig, clickBuyData } from "./click-buy-data.ts";

beforeAll(async () => {
  await selectBackend("wasm");
});

describe("training arguments", () => {
  it("take each optimiser's own learning rate unless one is given", () => {
    expect(resolveTrainArgs({}).learningRate).toBe(0.002);
    expect(resolveTrainArgs({ optimizer: "adam" }).learningRate).toBe(DEFAULT_LEARNING_RATES.adam);
    expect(resolveTrainArgs({ optimizer: "adagrad" }).learningRate).toBe(1);
    expect(resolveTrainArgs({ optimizer: "adagrad", learningRate: 0.05 }).learningRate).toBe(0.05);
    expect(resolveTrainArgs({ learningRate: 0.01 }).learningRate).toBe(0.01);
  });

  it("Adagrad at its default rate learns what Adam learns at its own", () => {
    const config = clickBuyConfig("shared-bottom", { bottom: [16], tower: [8], cross: 0 });
    const train = clickBuyData(3000, 1);
    const valid = clickBuyData(1000, 2);
    const auc = (optimizer: OptimizerKind, learningRate: number) => {
      const { params, validation } = trainNetwork(config, train, valid, {
        epochs: 4,
        batchSize: 128,
        learningRate,
        optimizer,
        seed: 3,
        patience: 4,
        taskWeights: {},
      });
      tf.dispose(Object.values(params));
      return validation.click!.auc!;
    };
    const adam = auc("adam", DEFAULT_LEARNING_RATES.adam);
    const adagrad = auc("adagrad", DEFAULT_LEARNING_RATES.adagrad);
    expect(adam).toBeGreaterThan(0.85);
    expect(adagrad).toBeGreaterThan(adam - 0.02);
    // Adam's rate starves Adagrad: the reason the rates differ.
    expect(auc("adagrad", DEFAULT_LEARNING_RATES.adam)).toBeLessThan(adagrad - 0.05);
  });

  it("give the embedding table sparse Adagrad on id-like features beside Adam, unless told otherwise", () => {
    expect(resolveTrainArgs({}).embeddingOptimizer).toBe("auto");
    expect(resolveTrainArgs({ embeddingOptimizer: "adam" }).embeddingOptimizer).toBe("adam");
    expect(resolveTrainArgs({ embeddingLearningRate: 0.2 }).embeddingLearningRate).toBe(0.2);
    const feature = (name: string, slot: number, offset: number, size: number) =>
      ({ kind: "categorical", name, side: "item", slot, offset, size }) as const;
    const encoder = (...sizes: number[]): EncoderState => {
      let offset = 0;
      const features = sizes.map((size, slot) => {
        const f = feature(`f${slot}`, slot, offset, size);
        offset += size;
        return f;
      });
      return {
        version: 1,
        trim: true,
        missing: [],
        features,
        denseSize: 0,
        idSlots: sizes.length,
        vocabSize: offset,
      };
    };
    const adam = { embeddingOptimizer: "auto", optimizer: "adam", learningRate: 0.002 } as const;
    // 5 rows of a small categorical, then 300 of an id-like one: Adagrad on those, at 0.5 × 256/512.
    const auto = embeddingOptions(adam, 256, encoder(5, 300));
    expect(auto.embeddingOptimizer).toBe("adam");
    expect(auto.embeddingLearningRate).toBe(0.25);
    expect(Array.from(auto.embeddingAdagradRows!.subarray(0, 5))).toEqual([0, 0, 0, 0, 0]);
    expect(auto.embeddingAdagradRows!.subarray(5).every((x) => x === 1)).toBe(true);
    expect(auto.embeddingAdagradRows!.length).toBe(305);
    // Without an id-like feature, or beside Adagrad: one optimiser and rate for the whole network.
    expect(embeddingOptions(adam, 256, encoder(5, 100))).toEqual({
      embeddingOptimizer: "adam",
      embeddingLearningRate: 0.002,
    });
    expect(
      embeddingOptions(
        { embeddingOptimizer: "auto", optimizer: "adagrad", learningRate: 1 },
        256,
        encoder(5, 300),
      ),
    ).toEqual({ embeddingOptimizer: "adagrad", embeddingLearningRate: 1 });
    // Named: that optimiser for the whole table; a given rate wins.
    expect(embeddingOptions({ ...adam, embeddingOptimizer: "adagrad" }, 512, encoder(5))).toEqual({
      embeddingOptimizer: "adagrad",
      embeddingLearningRate: 0.5,
    });
    expect(
      embeddingOptions(
        { ...adam, embeddingOptimizer: "adam", embeddingLearningRate: 0.01 },
        512,
        encoder(300),
      ),
    ).toEqual({ embeddingOptimizer: "adam", embeddingLearningRate: 0.01 });
    expect(defaultEmbeddingLearningRate("adam", 64, "adagrad", 1)).toBe(DEFAULT_LEARNING_RATES.adam);
  });

  it("trains the embedding table with its own optimiser and rate", () => {
    const config = clickBuyConfig("shared-bottom", { bottom: [8], tower: [4], cross: 0 });
    const data = clickBuyData(256, 4);
    const idx = Int32Array.from({ length: 128 }, (_, i) => i);
    const step = (embeddingLearningRate: number) => {
      const params = initNetwork(config, 7);
      const before = {
        table: Float32Array.from(params.embedding!.dataSync() as Float32Array),
        kernel: Float32Array.from(params["bottom/0/kernel"]!.dataSync() as Float32Array),
      };
      const optimizer = createNetworkOptimizer(params, config, {
        learningRate: 0.01,
        optimizer: "adam",
        embeddingOptimizer: "adagrad",
        embeddingLearningRate,
        taskWeights: {},
      });
      optimizer.setLearningRate(0.01);
      optimizer.step(data, idx);
      optimizer.sync();
      const moved = (a: Float32Array, b: Float32Array) => Math.max(...a.map((x, i) => Math.abs(x - b[i]!)));
      const result = {
        table: moved(params.embedding!.dataSync() as Float32Array, before.table),
        kernel: moved(params["bottom/0/kernel"]!.dataSync() as Float32Array, before.kernel),
        // Adagrad's accumulators start at 0.1 (lazy Adam's second moments at 0).
        accumulators: Math.min(...optimizer.exportState().arrays["sparse/v"]!.values),
      };
      optimizer.dispose();
      tf.dispose(Object.values(params));
      return result;
    };
    const still = step(1e-9);
    const moving = step(0.5);
    expect(still.table).toBeLessThan(1e-8);
    expect(still.kernel).toBeGreaterThan(1e-3);
    expect(still.accumulators).toBeGreaterThanOrEqual(0.1 - 1e-7);
    expect(moving.table).toBeGreaterThan(1e-3);
    // The dense layers' step does not depend on the table's rate.
    expect(moving.kernel).toBeCloseTo(still.kernel, 6);
  });
});
