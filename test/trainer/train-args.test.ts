/**
 * Training arguments' defaults (trainer/train/train-args.ts): the learning rate follows the
 * optimiser, and Adagrad at its default rate learns what Adam learns at its own.
 */
import * as tf from "@tensorflow/tfjs";
import { beforeAll, describe, expect, it } from "vitest";
import { selectBackend } from "../../trainer/train/backend.ts";
import { DEFAULT_LEARNING_RATES, type OptimizerKind } from "../../trainer/train/dense-optimizer.ts";
import { resolveTrainArgs } from "../../trainer/train/train-args.ts";
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
});
