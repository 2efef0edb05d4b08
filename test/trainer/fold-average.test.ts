/**
 * Fold networks averaged into one (trainer/train/fold-average.ts): the served weights are the
 * mean of k networks trained exactly as one-network runs on each fold's rows, every row is scored
 * by the network that did not train on it, and runTraining uses them for small random or group
 * splits only.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadTrainedModel } from "../../trainer/artifact/trained-model.ts";
import { runPrune } from "../../trainer/compress/run-prune.ts";
import type { EncodedPart } from "../../trainer/data/encode-dataset.ts";
import { takeRows } from "../../trainer/data/take-rows.ts";
import { targetFolds } from "../../trainer/data/target-folds.ts";
import { type NetworkConfig, readWeights } from "../../trainer/models/network.ts";
import { selectBackend } from "../../trainer/train/backend.ts";
import { calibrateHeads, calibrateOutputs } from "../../trainer/train/calibrate-heads.ts";
import {
  defaultAverageFolds,
  FOLD_AVERAGE_K,
  FOLD_AVERAGE_ROWS,
  type FoldAverage,
  trainFoldAverage,
} from "../../trainer/train/fold-average.ts";
import {
  evaluateHeads,
  predictNetwork,
  type TrainOptions,
  trainNetwork,
} from "../../trainer/train/train-network.ts";
import { runTraining } from "../../trainer/workflows/train-and-report.ts";
import { clickBuyConfig, clickBuyData } from "./click-buy-data.ts";
import { lcg } from "./lcg.ts";

beforeAll(async () => {
  await selectBackend("cpu");
});

const CONFIG = clickBuyConfig("mmoe", { experts: 2, expertSizes: [8], tower: [4] });

/** clickBuyData as an encoded part: 2 numbers and 1 id a row, groups of 4 rows when asked. */
function syntheticPart(rows: number, seed: number, grouped = false): EncodedPart {
  const groups = grouped ? Uint32Array.from({ length: rows }, (_, r) => 1000 + Math.floor(r / 4)) : null;
  return { ...clickBuyData(rows, seed), groups };
}

const OPTIONS: TrainOptions = {
  epochs: 3,
  batchSize: 32,
  learningRate: 0.02,
  patience: 2,
  seed: 9,
  taskWeights: { click: 1, buy: 1 },
};

describe("takeRows", () => {
  it("copies the picked rows' inputs, labels and groups, in the order given", () => {
    const part = syntheticPart(50, 3, true);
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 49 }), { maxLength: 80 }), (rows) => {
        const taken = takeRows(part, rows);
        expect(taken.rows).toBe(rows.length);
        rows.forEach((r, i) => {
          expect([taken.dense[2 * i], taken.dense[2 * i + 1]]).toEqual([
            part.dense[2 * r],
            part.dense[2 * r + 1],
          ]);
          expect(taken.ids[i]).toBe(part.ids[r]);
          expect([taken.labels.click![i], taken.labels.buy![i]]).toEqual([
            part.labels.click![r],
            part.labels.buy![r],
          ]);
          expect(taken.groups![i]).toBe(part.groups![r]);
        });
      }),
      { numRuns: 50 },
    );
    expect(takeRows(syntheticPart(5, 1), [0, 4]).groups).toBeNull();
    expect(() => takeRows(part, [50])).toThrow(/row 50 is outside the part's 50 rows/);
  });
});

describe("trainFoldAverage", () => {
  const all = syntheticPart(400, 11);
  const k = 3;
  const folds = targetFolds(all.rows, null, OPTIONS.seed, k);
  let average: FoldAverage;
  beforeAll(async () => {
    average = await trainFoldAverage(CONFIG, all, folds, k, OPTIONS);
  });

  it("serves the mean of the weights of k one-network runs on each fold's rows, from one start", () => {
    const sums: Record<string, Float64Array> = {};
    const epochs: number[] = [];
    for (let f = 0; f < k; f++) {
      const rowsOf = (keep: boolean) => [...folds.keys()].filter((r) => (folds[r] === f) === keep);
      const result = trainNetwork(CONFIG, takeRows(all, rowsOf(false)), takeRows(all, rowsOf(true)), OPTIONS);
      for (const [name, w] of Object.entries(readWeights(result.params))) {
        sums[name] ??= new Float64Array(w.values.length);
        const sum = sums[name];
        w.values.forEach((x, i) => {
          sum[i]! += x;
        });
      }
      epochs.push(result.bestEpoch);
      tf.dispose(Object.values(result.params));
    }
    expect(Object.keys(average.weights).sort()).toEqual(Object.keys(sums).sort());
    for (const [name, sum] of Object.entries(sums)) {
      const mean = Array.from(sum, (x) => x / k);
      const got = average.weights[name]!.values;
      mean.forEach((x, i) => {
        expect(got[i]!, name).toBeCloseTo(x, 5);
      });
    }
    expect(average.folds.map((f) => f.bestEpoch)).toEqual(epochs);
    expect(average.bestEpoch).toBe(Math.round(epochs.reduce((a, b) => a + b, 0) / k));
  });

  it("scores every row once, by the network that did not train on it; validation is those outputs' metrics", () => {
    expect(average.folds.map((f) => f.validRows).reduce((a, b) => a + b, 0)).toBe(all.rows);
    expect(average.folds.map((f) => f.trainRows + f.validRows)).toEqual(Array(k).fill(all.rows));
    // Fold 0's network again, alone: its outputs on fold 0 are the out-of-fold outputs there.
    const valid = [...folds.keys()].filter((r) => folds[r] === 0);
    const train = [...folds.keys()].filter((r) => folds[r] !== 0);
    const result = trainNetwork(CONFIG, takeRows(all, train), takeRows(all, valid), OPTIONS);
    const own = predictNetwork(result.params, CONFIG, takeRows(all, valid));
    tf.dispose(Object.values(result.params));
    for (const head of ["click", "buy"])
      valid.forEach((r, i) => {
        expect(average.outOfFold[head]![r]).toBeCloseTo(own[head]![i]!, 6);
      });
    expect(average.validation).toEqual(evaluateHeads(CONFIG, all, average.outOfFold));
    expect(average.validation.click!.auc).toBeGreaterThan(0.7);
  });

  it("refuses a fold without rows, naming it", async () => {
    const lopsided = new Uint8Array(all.rows); // every row in fold 0
    await expect(trainFoldAverage(CONFIG, all, lopsided, 2, OPTIONS)).rejects.toThrow(
      /^fold 1 of 2 has 0 training and 400 validation rows$/,
    );
    await expect(trainFoldAverage(CONFIG, all, folds.subarray(1), k, OPTIONS)).rejects.toThrow(
      /399 entries for 400 rows/,
    );
  });
});

describe("calibrateOutputs", () => {
  it("fits and serves what calibrateHeads does from the network's own outputs", () => {
    const part = syntheticPart(300, 5);
    const result = trainNetwork(CONFIG, part, part, { ...OPTIONS, epochs: 2 });
    const a: NetworkConfig = { ...CONFIG, heads: CONFIG.heads.map((h) => ({ ...h })) };
    const b: NetworkConfig = { ...CONFIG, heads: CONFIG.heads.map((h) => ({ ...h })) };
    const viaNetwork = calibrateHeads("platt", a, result.params, part);
    const viaOutputs = calibrateOutputs("platt", b, part, predictNetwork(result.params, CONFIG, part));
    // The served outputs of the calibrated network, against the ones computed from raw outputs.
    const served = predictNetwork(result.params, b, part);
    tf.dispose(Object.values(result.params));
    for (const head of ["click", "buy"]) {
      expect(viaOutputs.heads![head]!.scale).toBeCloseTo(viaNetwork.heads![head]!.scale, 5);
      expect(viaOutputs.heads![head]!.shift).toBeCloseTo(viaNetwork.heads![head]!.shift, 5);
      served[head]!.forEach((p, i) => {
        expect(viaOutputs.predictions![head]![i]!).toBeCloseTo(p, 5);
      });
    }
    expect(calibrateOutputs("none", b, part, {})).toEqual({});
  });
});

describe("defaultAverageFolds", () => {
  it("averages fold networks on small random and group splits only", () => {
    expect(defaultAverageFolds(FOLD_AVERAGE_ROWS - 1, "random", false)).toBe(FOLD_AVERAGE_K);
    expect(defaultAverageFolds(100, "group", false)).toBe(FOLD_AVERAGE_K);
    expect(defaultAverageFolds(FOLD_AVERAGE_ROWS, "random", false)).toBe(1);
    expect(defaultAverageFolds(100, "time", false)).toBe(1);
    expect(defaultAverageFolds(100, "random", true)).toBe(1);
  });
});

describe("runTraining on a small file", () => {
  let dir: string;
  const ROWS = 600;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "mtrank-folds-"));
    const random = lcg(21);
    const lines = ["user,shade,price,t,click"];
    for (let r = 0; r < ROWS; r++) {
      const shade = ["red", "green", "blue"][Math.floor(random() * 3)]!;
      const price = random() * 10;
      const click = (shade === "red" ? 0.6 : 0.2) + (price < 3 ? 0.3 : 0) > random() ? 1 : 0;
      lines.push(`u${r % 40},${shade},${price.toFixed(2)},${r},${click}`);
    }
    writeFileSync(join(dir, "data.csv"), `${lines.join("\n")}\n`);
    const spec = (group: boolean) => ({
      format: "csv",
      ...(group ? { group: "user" } : {}),
      features: [
        { name: "shade", type: "categorical" },
        { name: "price", type: "numeric" },
      ],
      tasks: [{ name: "click", type: "binary", column: "click", positive: ["1"] }],
    });
    writeFileSync(join(dir, "spec.json"), JSON.stringify(spec(false)));
    writeFileSync(join(dir, "group.json"), JSON.stringify(spec(true)));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const base = () => ({
    data: join(dir, "data.csv"),
    spec: join(dir, "spec.json"),
    arch: "mmoe",
    epochs: 2,
    seed: 4,
  });

  it("trains five fold networks by default, saves their runs, and validates every row out of fold", async () => {
    const out = join(dir, "model");
    const summary = await runTraining({ ...base(), out });
    expect(summary.folds).toHaveLength(FOLD_AVERAGE_K);
    expect([summary.trainRows, summary.validRows]).toEqual([ROWS, ROWS]);
    // The folds are the encoder's target-column folds (same seed, same k): each fold's size.
    const dealt = targetFolds(ROWS, null, 4, FOLD_AVERAGE_K);
    expect(summary.folds!.map((f) => f.validRows)).toEqual(
      Array.from({ length: FOLD_AVERAGE_K }, (_, f) => dealt.filter((x) => x === f).length),
    );
    expect(summary.validation.click!.count).toBe(ROWS);
    expect(summary.validation.click!.auc).toBeGreaterThan(0.6);
    const saved = await loadTrainedModel(out);
    expect(saved.training.folds?.map((f) => f.validRows)).toEqual(summary.folds!.map((f) => f.validRows));
    expect(saved.training.validRows).toBe(ROWS);
    expect(saved.config.heads[0]!.calibration).toBeDefined();
    const report = readFileSync(join(out, "report.html"), "utf8");
    expect(report).toContain("the weight average of 5 fold networks");
    expect(report).toContain("Validation metrics (out of fold)");
  });

  it("is flagged by compress: a fold-trained model's figures on its own file are in-sample", async () => {
    const summary = await runPrune({
      model: join(dir, "model"),
      data: join(dir, "data.csv"),
      out: join(dir, "pruned"),
      sparsity: 0.5,
      epochs: 1,
      backend: "cpu",
    });
    expect(summary.sourceInSample).toBe(true);
  });

  it("deals whole groups into folds when the spec has a group", async () => {
    const summary = await runTraining({ ...base(), spec: join(dir, "group.json"), averageFolds: 4 });
    expect(summary.split).toBe("group");
    // 40 users of 15 rows each: every fold holds whole users.
    for (const f of summary.folds!) expect(f.validRows % 15).toBe(0);
  });

  it("trains one network on a held-out part with averageFolds 1, a time column or a cross-validation fold", async () => {
    const one = await runTraining({ ...base(), averageFolds: 1 });
    expect(one.folds).toBeUndefined();
    expect(one.trainRows + one.validRows).toBe(ROWS);
    const timed = await runTraining({ ...base(), timeColumn: "t" });
    expect([timed.folds, timed.split]).toEqual([undefined, "time"]);
    const cv = await runTraining({ ...base(), fold: { k: 3, index: 0 } });
    expect(cv.folds).toBeUndefined();
  });

  it("refuses fold networks beside a time column or --resume, and more folds than rows", async () => {
    await expect(runTraining({ ...base(), averageFolds: 5, timeColumn: "t" })).rejects.toThrow(
      /^--average-folds: .*--time-column needs --average-folds 1$/,
    );
    await expect(runTraining({ ...base(), out: join(dir, "resumed"), resume: true })).rejects.toThrow(
      /^--resume: a run of fold networks keeps no checkpoint/,
    );
    await expect(
      runTraining({ ...base(), averageFolds: 255, spec: join(dir, "group.json") }),
    ).rejects.toThrow(/255 folds need at least 255 groups, the data has 40/);
  });
});
