/** Fine-tuning runs the trainer's loop from saved weights and keeps the start when nothing beats it. */
import * as tf from "@tensorflow/tfjs";
import { beforeAll, describe, expect, it } from "vitest";
import { fineTune } from "../../trainer/compress/fine-tune.ts";
import { readWeights } from "../../trainer/models/network.ts";
import { selectBackend } from "../../trainer/train/backend.ts";
import { trainNetwork } from "../../trainer/train/train-network.ts";
import { clickBuyConfig, clickBuyData } from "./click-buy-data.ts";

beforeAll(async () => {
  await selectBackend("cpu");
});

const CONFIG = clickBuyConfig("shared-bottom", { bottom: [8], tower: [4] });

const data = clickBuyData;

describe("fineTune", () => {
  const train = data(600, 1);
  const valid = data(300, 2);
  const trained = trainNetwork(CONFIG, train, valid, {
    epochs: 3,
    batchSize: 64,
    learningRate: 0.01,
    seed: 1,
    patience: 3,
    taskWeights: {},
  });
  const start = readWeights(trained.params);
  // Variables are registered by name: free them before fine-tuning creates its own.
  tf.dispose(Object.values(trained.params));
  const common = { batchSize: 64, seed: 2, taskWeights: {}, epochs: 2 };

  it("keeps the starting weights (best epoch 0) when every epoch scores worse", async () => {
    // A learning rate this large wrecks the network in the first steps.
    const result = await fineTune(CONFIG, start, train, valid, { ...common, learningRate: 50 });
    expect(result.bestEpoch).toBe(0);
    expect(result.history).toHaveLength(2);
    for (const [name, w] of Object.entries(start))
      expect(Array.from(result.weights[name]!.values)).toEqual(Array.from(w.values));
    expect(result.validation.click!.auc).toBeCloseTo(trained.validation.click!.auc!, 9);
  });

  it("calls afterStep on the parameters after every step", async () => {
    let calls = 0;
    await fineTune(CONFIG, start, train, valid, { ...common, learningRate: 0.001, afterStep: () => calls++ });
    // Once before the first step, once per step (10 batches of 64 in 600 rows), once per epoch.
    expect(calls).toBe(1 + 2 * 10 + 2);
  });
});
