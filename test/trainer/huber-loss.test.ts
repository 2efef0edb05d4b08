/** Regression heads with `loss: "huber"`: the spec field, and robustness to outlying labels. */
import * as tf from "@tensorflow/tfjs";
import { beforeAll, describe, expect, it } from "vitest";
import { parseSpec, SpecError } from "../../shared/spec.ts";
import type { NetworkConfig } from "../../trainer/models/network.ts";
import { DEFAULT_ARCH_OPTIONS } from "../../trainer/models/types.ts";
import { selectBackend } from "../../trainer/train/backend.ts";
import { huber } from "../../trainer/train/loss.ts";
import { type LabelledBatch, predictNetwork, trainNetwork } from "../../trainer/train/train-network.ts";
import { lcg } from "./lcg.ts";

beforeAll(async () => {
  await selectBackend("cpu");
});

const spec = (task: Record<string, unknown>) => ({
  format: "csv",
  features: [{ name: "x", type: "numeric" }],
  tasks: [{ name: "dwell", type: "regression", column: "dwell_s", ...task }],
});

describe("spec", () => {
  it("accepts loss huber with a delta, and names the field of a loss it does not know", () => {
    expect(parseSpec(spec({ loss: "huber", delta: 2 })).tasks[0]).toMatchObject({ loss: "huber", delta: 2 });
    expect(() => parseSpec(spec({ loss: "l1" }))).toThrow(SpecError);
    expect(() => parseSpec(spec({ loss: "l1" }))).toThrow(/tasks\.0\.loss/);
    expect(() => parseSpec(spec({ loss: "huber", delta: 0 }))).toThrow(/tasks\.0\.delta/);
  });
});

describe("huber", () => {
  it("is ½r² within delta and linear beyond", () => {
    const values = tf.tensor2d([[0], [0]]);
    const labels = tf.tensor2d([[0.5], [3]]);
    // (½·0.25 + 1·(3 − ½)) / 2
    expect(huber(values, labels, 1).dataSync()[0]).toBeCloseTo((0.125 + 2.5) / 2, 6);
  });

  it("fits the clean relation through 5% outlying labels better than squared error", () => {
    const config = (loss: "mse" | "huber"): NetworkConfig => ({
      arch: "shared-bottom",
      options: { ...DEFAULT_ARCH_OPTIONS, bottom: [16], tower: [8] },
      embeddingDim: 2,
      denseSize: 2,
      idSlots: 1,
      vocabSize: 4,
      heads: [{ name: "dwell", type: "regression", transform: "none", loss }],
    });
    const data = (rows: number, seed: number, outliers: boolean): LabelledBatch => {
      const random = lcg(seed);
      const dense = Float32Array.from({ length: rows * 2 }, (_, i) => (i % 2 === 0 ? random() * 2 - 1 : 0));
      const dwell = Float32Array.from({ length: rows }, (_, r) => {
        const clean = 2 * dense[2 * r]! + 1;
        return outliers && random() < 0.05 ? clean + 40 : clean;
      });
      return { rows, dense, ids: new Int32Array(rows).fill(2), labels: { dwell } };
    };
    const train = data(2000, 1, true);
    const valid = data(500, 2, false);
    const mae = (loss: "mse" | "huber") => {
      const c = config(loss);
      const result = trainNetwork(c, train, valid, {
        epochs: 6,
        batchSize: 64,
        learningRate: 0.01,
        seed: 3,
        patience: 6,
        earlyStop: "mae:dwell",
        taskWeights: {},
      });
      const p = predictNetwork(result.params, c, valid).dwell!;
      tf.dispose(Object.values(result.params));
      return p.reduce((sum, x, i) => sum + Math.abs(x - valid.labels.dwell![i]!), 0) / valid.rows;
    };
    const [mse, hub] = [mae("mse"), mae("huber")];
    expect(hub).toBeLessThan(mse * 0.7);
  });
});
