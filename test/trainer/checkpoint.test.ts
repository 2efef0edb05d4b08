/** Checkpoint and resume: a resumed run ends where the uninterrupted one does. */
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { beforeAll, describe, expect, it } from "vitest";
import { loadCheckpoint, saveCheckpoint } from "../../trainer/artifact/checkpoint.ts";
import { selectBackend } from "../../trainer/train/backend.ts";
import { type TrainingState, type TrainOptions, trainNetwork } from "../../trainer/train/train-network.ts";
import { clickBuyConfig, clickBuyData } from "./click-buy-data.ts";

beforeAll(async () => {
  await selectBackend("cpu");
});

const CONFIG = clickBuyConfig("mmoe", { experts: 2, expertSizes: [8], tower: [4] });

const data = clickBuyData;

function values(result: ReturnType<typeof trainNetwork>): Record<string, number[]> {
  return Object.fromEntries(Object.entries(result.params).map(([k, v]) => [k, Array.from(v.dataSync())]));
}

describe("checkpoint and resume", () => {
  for (const optimizer of ["adam", "adagrad"] as const) {
    it(`a run resumed after epoch 2 ends with the uninterrupted run's weights (${optimizer}, uncertainty weights)`, () => {
      const train = data(900, 1);
      const valid = data(300, 2);
      const options: TrainOptions = {
        epochs: 4,
        batchSize: 64,
        learningRate: 0.01,
        seed: 7,
        patience: 10,
        taskWeights: {},
        optimizer,
        taskWeighting: "uncertainty",
      };
      const states: TrainingState[] = [];
      const whole = trainNetwork(CONFIG, train, valid, {
        ...options,
        checkpoint: { save: (s) => states.push(s) },
      });
      expect(states.map((s) => s.epoch)).toEqual([1, 2, 3]);
      const a = values(whole);
      tf.dispose(Object.values(whole.params)); // variable names are global in tfjs
      const resumed = trainNetwork(CONFIG, train, valid, { ...options, checkpoint: { resume: states[1]! } });
      expect(resumed.history.map((h) => h.epoch)).toEqual([1, 2, 3, 4]);
      expect(resumed.bestEpoch).toBe(whole.bestEpoch);
      const b = values(resumed);
      for (const name of Object.keys(a)) {
        const diff = Math.max(...a[name]!.map((x, i) => Math.abs(x - b[name]![i]!)));
        expect(diff, name).toBeLessThan(1e-5);
      }
      expect(resumed.history[3]!.taskWeights).toEqual(whole.history[3]!.taskWeights);
      tf.dispose(Object.values(resumed.params));
    });
  }

  it("round-trips through files and refuses a checkpoint from another run", async () => {
    const dir = await mkdtemp(join(tmpdir(), "mtrank-ckpt-"));
    const state: TrainingState = {
      epoch: 3,
      history: [],
      best: { epoch: 2, score: 0.7 },
      arrays: { "param/w": { shape: [2, 2], values: Float32Array.from([1, 2, 3, 4.5]) } },
      scalars: { dense: [0.9, 0.99], weighting: [0.25] },
    };
    saveCheckpoint(dir, "run-a", state);
    expect(loadCheckpoint(dir, "run-a")).toEqual(state);
    expect(() => loadCheckpoint(dir, "run-b")).toThrow(
      /--resume: the checkpoint comes from a run with other data/,
    );
    expect(() => loadCheckpoint(join(dir, "nothing"), "run-a")).toThrow(/holds no checkpoint/);
  });
});
