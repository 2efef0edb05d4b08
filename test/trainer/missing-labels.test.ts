/**
 * Tasks whose spec says `missingLabel: "mask"`: a row without the label trains the other tasks and
 * is left out of this task's loss (one thread or sharded), ranking loss, metrics and calibration.
 */
import { spawnSync } from "node:child_process";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { beforeAll, describe, expect, it } from "vitest";
import { parseSpec } from "../../shared/spec.ts";
import { blendTargets } from "../../trainer/compress/distill.ts";
import { encodeDataset } from "../../trainer/data/encode-dataset.ts";
import { loadDataset } from "../../trainer/data/load-dataset.ts";
import { labelCorrelation, pearson } from "../../trainer/metrics/correlation.ts";
import { evaluateTask } from "../../trainer/metrics/task-metrics.ts";
import type { HeadSpec } from "../../trainer/models/types.ts";
import { selectBackend } from "../../trainer/train/backend.ts";
import { batchArrays } from "../../trainer/train/batch-gradients.ts";
import { headLoss, listwiseLoss } from "../../trainer/train/loss.ts";
import { predictNetwork, trainNetwork } from "../../trainer/train/train-network.ts";
import { clickBuyConfig, clickBuyData } from "./click-buy-data.ts";
import { lcg } from "./lcg.ts";

beforeAll(async () => {
  await selectBackend("cpu");
});

const features = [{ name: "x", type: "numeric" }] as const;
const tasks = (missingLabel?: "error" | "mask") => [
  { name: "click", type: "binary", column: "clicked" },
  { name: "dwell", type: "regression", column: "dwell_s", ...(missingLabel ? { missingLabel } : {}) },
];

async function file(name: string, text: string): Promise<string> {
  const path = join(await mkdtemp(join(tmpdir(), "mtrank-missing-")), name);
  await writeFile(path, text);
  return path;
}

/** n rows; dwell is empty on unclicked rows (every third row clicks). */
function dwellCsv(n: number): string {
  const lines = ["x,clicked,dwell_s"];
  for (let i = 0; i < n; i++) lines.push(`${i},${i % 3 === 0 ? 1 : 0},${i % 3 === 0 ? i / 10 : ""}`);
  return `${lines.join("\n")}\n`;
}

describe("spec and loader", () => {
  it("accepts missingLabel mask or error on either task type, and names the field of anything else", () => {
    expect(parseSpec({ format: "csv", features, tasks: tasks("mask") }).tasks[1]!.missingLabel).toBe("mask");
    expect(() =>
      parseSpec({
        format: "csv",
        features,
        tasks: [{ name: "c", type: "binary", column: "y", missingLabel: "zero" }],
      }),
    ).toThrow(/tasks\.0\.missingLabel/);
  });

  it("keeps unlabelled rows as NaN for a masked task, counts them, and errors without the mask", async () => {
    const path = await file("d.csv", dwellCsv(300));
    const masked = parseSpec({ format: "csv", features, tasks: tasks("mask") });
    const data = await encodeDataset(path, masked, { validFraction: 0.2, seed: 1 });
    const all = [...data.train.labels.dwell!, ...data.valid.labels.dwell!];
    const clicks = [...data.train.labels.click!, ...data.valid.labels.click!];
    expect(all.filter(Number.isNaN)).toHaveLength(200);
    all.forEach((y, i) => {
      expect(Number.isNaN(y)).toBe(clicks[i] === 0);
    });
    expect(data.unlabelled).toEqual({ dwell: 200 });
    expect(data.counts.skipped).toBe(0);
    const memory = await loadDataset(path, masked);
    expect(memory.labels.dwell!.filter(Number.isNaN)).toHaveLength(200);

    const strict = parseSpec({ format: "csv", features, tasks: tasks() });
    await expect(encodeDataset(path, strict, { validFraction: 0.2, seed: 1 })).rejects.toThrow(
      /d\.csv:3: column "dwell_s": missing label for task "dwell" \(tasks\.dwell\.missingLabel "mask"/,
    );
  });

  it("reads a conditional task's missing label as 0 where the task it is given did not happen", async () => {
    // purchase given click: empty on unclicked rows (0: no purchase without a click), and on
    // clicked row 4 too, which is an error unless purchase masks missing labels.
    const text = "x,clicked,bought\n1,0,\n2,1,1\n3,0,NA\n4,1,\n5,1,0\n";
    const path = await file("g.csv", text);
    const given = (missingLabel?: "mask") =>
      parseSpec({
        format: "csv",
        features,
        tasks: [
          { name: "click", type: "binary", column: "clicked" },
          {
            name: "purchase",
            type: "binary",
            column: "bought",
            given: "click",
            ...(missingLabel ? { missingLabel } : {}),
          },
        ],
      });
    await expect(loadDataset(path, given())).rejects.toThrow(
      /g\.csv:5: column "bought": missing label for task "purchase"/,
    );
    expect([...(await loadDataset(path, given("mask"))).labels.purchase!]).toEqual([0, 1, 0, Number.NaN, 0]);
  });

  it("still rejects a label that is present but not a number, and a task with no label to train on", async () => {
    const masked = parseSpec({ format: "csv", features, tasks: tasks("mask") });
    const bad = await file("b.csv", "x,clicked,dwell_s\n1,1,2\n2,0,soon\n");
    await expect(encodeDataset(bad, masked, { validFraction: 0.5, seed: 1 })).rejects.toThrow(
      /b\.csv:3: column "dwell_s": "soon" is not a number/,
    );
    const none = await file("n.csv", "x,clicked,dwell_s\n1,1,\n2,0,\n3,1,\n4,0,\n");
    await expect(encodeDataset(none, masked, { validFraction: 0.25, seed: 1 })).rejects.toThrow(
      /n\.csv: task "dwell" \(column "dwell_s"\): no training row has a label/,
    );
  });
});

/** Per-row loss inputs: 8 rows, labels with NaN at rows 1, 4 and 6. */
const LOGITS = [0.3, -1.2, 2.0, 0.1, -0.4, 1.5, -2.2, 0.8];
const LABELS = Float32Array.from([1, Number.NaN, 0, 1, Number.NaN, 0, Number.NaN, 1]);
const KEPT = [0, 2, 3, 5, 7];

/** A network config with no inputs: batchArrays then copies labels alone. */
const NO_INPUTS = { denseSize: 0, idSlots: 0 } as unknown as Parameters<typeof batchArrays>[0];

function maskedLoss(head: HeadSpec, logits: number[], labels: Float32Array): number {
  const arrays = batchArrays(
    NO_INPUTS,
    { rows: labels.length, dense: new Float32Array(0), ids: new Int32Array(0), labels: { y: labels } },
    Int32Array.from(labels, (_, i) => i),
  );
  return tf.tidy(() => {
    const z = tf.tensor2d(logits, [logits.length, 1]);
    const y = tf.tensor2d(arrays.labels.y!, [logits.length, 1]);
    const w = arrays.labelWeights.y ? tf.tensor2d(arrays.labelWeights.y, [logits.length, 1]) : undefined;
    return headLoss(head, z, y, w).dataSync()[0]!;
  });
}

describe("losses", () => {
  const heads: HeadSpec[] = [
    { name: "y", type: "binary" },
    { name: "y", type: "regression" },
    { name: "y", type: "regression", loss: "huber", delta: 0.5 },
  ];
  for (const head of heads) {
    it(`${head.type}${head.type === "regression" ? ` (${head.loss ?? "mse"})` : ""}: labelled rows only, each counted as one of the batch's rows`, () => {
      const subset = maskedLoss(
        head,
        KEPT.map((i) => LOGITS[i]!),
        Float32Array.from(KEPT, (i) => LABELS[i]!),
      );
      // The subset's mean times its share of the batch: each label weighs 1/8, as in a full batch.
      expect(maskedLoss(head, LOGITS, LABELS)).toBeCloseTo((subset * KEPT.length) / LABELS.length, 6);
      // Any value in the unlabelled rows gives the same loss.
      expect(maskedLoss(head, LOGITS, LABELS)).not.toBeCloseTo(
        maskedLoss(
          head,
          LOGITS,
          LABELS.map((y) => (Number.isNaN(y) ? 1 : y)),
        ),
        3,
      );
    });
  }

  it("gives 0, not NaN, on a batch with no label, and no gradient to unlabelled rows", () => {
    const head: HeadSpec = { name: "y", type: "binary" };
    expect(maskedLoss(head, [0.5, -0.5], Float32Array.from([Number.NaN, Number.NaN]))).toBe(0);
    const w = tf.tensor2d(
      Array.from(LABELS, (y) => (Number.isNaN(y) ? 0 : 1 / KEPT.length)),
      [8, 1],
    );
    const y = tf.tensor2d(
      Array.from(LABELS, (v) => (Number.isNaN(v) ? 0 : v)),
      [8, 1],
    );
    const grad = tf.grad((z: tf.Tensor) => headLoss(head, z as tf.Tensor2D, y, w))(
      tf.tensor2d(LOGITS, [8, 1]),
    );
    const g = grad.dataSync();
    for (let i = 0; i < 8; i++) expect(g[i] === 0).toBe(!KEPT.includes(i));
  });

  it("listwise: an unlabelled row takes no part in its group's softmax", () => {
    const segments = [0, 0, 0, 0, 1, 1, 1, 1];
    const value = (rows: number[], weights: boolean) =>
      tf.tidy(() => {
        const local = rows.map((i) => segments[i]!);
        return listwiseLoss(
          tf.tensor2d(
            rows.map((i) => LOGITS[i]!),
            [rows.length, 1],
          ),
          tf.tensor2d(
            rows.map((i) => (Number.isNaN(LABELS[i]!) ? 0 : LABELS[i]!)),
            [rows.length, 1],
          ),
          tf.tensor1d(local, "int32"),
          2,
          weights
            ? tf.tensor2d(
                rows.map((i) => (Number.isNaN(LABELS[i]!) ? 0 : 0.2)),
                [rows.length, 1],
              )
            : undefined,
        ).dataSync()[0]!;
      });
    const all = [0, 1, 2, 3, 4, 5, 6, 7];
    expect(value(all, true)).toBeCloseTo(value(KEPT, false), 6);
    expect(value(all, false)).not.toBeCloseTo(value(KEPT, false), 3);
  });

  it("shards weigh each label 1/their rows: their losses averaged by share are the batch's", () => {
    const data = {
      rows: 8,
      dense: new Float32Array(0),
      ids: new Int32Array(0),
      labels: { y: LABELS },
    };
    const idx = Int32Array.from({ length: 8 }, (_, i) => i);
    // Rows 0-2 hold two labels, rows 3-7 three: per-shard means over labelled rows would weigh
    // them differently.
    const parts = [idx.subarray(0, 3), idx.subarray(3)];
    const sum = parts.reduce((total, part) => {
      const a = batchArrays(NO_INPUTS, data, part);
      return total + (part.length / 8) * a.labelWeights.y!.reduce((s, w, i) => s + w * a.labels.y![i]!, 0);
    }, 0);
    const whole = batchArrays(NO_INPUTS, data, idx);
    expect(sum).toBeCloseTo(
      whole.labelWeights.y!.reduce((s, w, i) => s + w * whole.labels.y![i]!, 0),
      6,
    );
  });
});

describe("metrics", () => {
  it("evaluateTask leaves unlabelled rows out of every number, GAUC groups included", () => {
    const outputs = Float32Array.from([0.9, 0.1, 0.2, 0.7, 0.95, 0.3, 0.05, 0.6]);
    const groups = ["a", "a", "a", "a", "b", "b", "b", "b"];
    const head = { name: "y", type: "binary" } as const;
    const masked = evaluateTask(head, LABELS, outputs, { groups }).metrics;
    const subset = evaluateTask(
      head,
      KEPT.map((i) => LABELS[i]!),
      KEPT.map((i) => outputs[i]!),
      { groups: KEPT.map((i) => groups[i]!) },
    ).metrics;
    expect(masked).toEqual(subset);
    expect(masked.count).toBe(5);
    for (const value of Object.values(masked)) expect(Number.isNaN(value)).toBe(false);
  });

  it("label correlation is pairwise over rows where both tasks have a label", () => {
    const a = Float32Array.from([1, 0, 1, 0, 1, 0, 1, 1]);
    const r = labelCorrelation({ a, b: LABELS }).matrix[0]![1]!;
    expect(r).toBeCloseTo(
      pearson(
        KEPT.map((i) => a[i]!),
        KEPT.map((i) => LABELS[i]!),
      ),
      9,
    );
    expect(Number.isNaN(r)).toBe(false);
  });

  it("distillation targets fall back to the teacher where the label is missing", () => {
    const blended = blendTargets({ y: LABELS }, { y: new Float32Array(8).fill(0.25) }, 0.5).y!;
    KEPT.forEach((i) => {
      expect(blended[i]).toBeCloseTo(0.5 * LABELS[i]! + 0.125, 6);
    });
    expect(blended[1]).toBeCloseTo(0.25, 6);
  });
});

describe("training", () => {
  it("a task labelled on 40% of rows stays calibrated; filling the rest with 0 would not", () => {
    const config = clickBuyConfig("mmoe", { experts: 2, expertSizes: [8], tower: [4] });
    const train = clickBuyData(2000, 1);
    const valid = clickBuyData(600, 2);
    const random = lcg(5);
    // Which rows lack the buy label is random, so nothing in the features can tell.
    const hide = (y: Float32Array) => y.map((v) => (random() < 0.6 ? Number.NaN : v));
    const buyRate = (labels: Float32Array) => labels.reduce((s, v) => s + v, 0) / labels.length;
    const meanPrediction = (trainBuy: Float32Array) => {
      const result = trainNetwork(
        config,
        { ...train, labels: { click: train.labels.click!, buy: trainBuy } },
        valid,
        // 8 epochs: a label on 40% of rows gets 40% of a full task's gradient, so the buy head
        // settles later than with every label (4 epochs: 0.58 of the rate; 8: 0.96; 16: 0.99).
        { epochs: 8, batchSize: 64, learningRate: 0.02, seed: 3, patience: 8, taskWeights: {} },
      );
      const p = predictNetwork(result.params, config, valid).buy!;
      tf.dispose(Object.values(result.params));
      return buyRate(p);
    };
    const hidden = hide(train.labels.buy!);
    const observed = buyRate(valid.labels.buy!);
    const masked = meanPrediction(hidden);
    const zeroFilled = meanPrediction(hidden.map((v) => (Number.isNaN(v) ? 0 : v)));
    expect(masked / observed).toBeGreaterThan(0.8);
    expect(masked / observed).toBeLessThan(1.25);
    expect(zeroFilled / observed).toBeLessThan(0.6);
  }, 60_000);
});

// Spawns tsx (2-5 s each on a loaded 2-core machine).
describe("train and evaluate CLI", { timeout: 120_000 }, () => {
  it("trains with a masked task, says how many rows it masked, and evaluates on labelled rows", async () => {
    const dir = await mkdtemp(join(tmpdir(), "mtrank-missing-cli-"));
    const random = lcg(11);
    const lines = ["x,c,clicked,dwell_s"];
    for (let i = 0; i < 600; i++) {
      const x = random() * 2 - 1;
      const click = random() < 0.3 + 0.4 * x * x ? 1 : 0;
      lines.push(
        `${x.toFixed(4)},${"abc"[i % 3]},${click},${click ? (2 + 3 * x + random()).toFixed(3) : "NA"}`,
      );
    }
    const data = join(dir, "data.csv");
    await writeFile(data, `${lines.join("\n")}\n`);
    const specPath = join(dir, "spec.json");
    await writeFile(
      specPath,
      JSON.stringify({
        format: "csv",
        features: [
          { name: "x", type: "numeric" },
          { name: "c", type: "categorical" },
        ],
        tasks: tasks("mask"),
      }),
    );
    const out = join(dir, "model");
    const tsx = (args: string[]) =>
      spawnSync("node_modules/.bin/tsx", args, { encoding: "utf8", timeout: 120_000 });
    const trained = tsx([
      "trainer/cli/train.ts",
      ...["--data", data, "--spec", specPath, "--arch", "mmoe", "--out", out, "--epochs", "2"],
    ]);
    expect(trained.status, trained.stderr).toBe(0);
    const unlabelled = lines.slice(1).filter((l) => l.endsWith(",NA")).length;
    expect(trained.stdout).toContain(
      `rows without a label, left out of that task's loss and metrics (missingLabel "mask"): dwell ${unlabelled}`,
    );
    const network = JSON.parse(await readFile(join(out, "training", "network.json"), "utf8"));
    expect(network.training.rowsUnlabelled).toEqual({ dwell: unlabelled });
    const report = await readFile(join(out, "report.html"), "utf8");
    expect(report).toContain(`dwell: ${unlabelled} rows without a label (masked)`);

    const exported = tsx(["trainer/cli/export.ts", "--model", out]);
    expect(exported.status, exported.stderr).toBe(0);
    const evaluated = tsx(["trainer/cli/evaluate.ts", "--model", out, "--data", data, "--json"]);
    expect(evaluated.status, evaluated.stderr).toBe(0);
    const evaluation = JSON.parse(evaluated.stdout);
    expect(evaluation.tasks.dwell.count).toBe(600 - unlabelled);
    expect(evaluation.tasks.click.count).toBe(600);
    expect(Number.isFinite(evaluation.tasks.dwell.mse)).toBe(true);
    // Over its labelled rows dwell correlates with itself; with click, where click is always 1: no number.
    expect(evaluation.correlation.matrix[1][1]).toBeCloseTo(1, 9);
    expect(evaluation.correlation.matrix[0][1]).toBeNull();
  });
});
