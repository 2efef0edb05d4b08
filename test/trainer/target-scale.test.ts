/**
 * Regression heads learn standardised targets: a label in large units (spend in cents) trains
 * beside a binary task without drowning it, and the served output (tfjs and ONNX) is back in
 * label units.
 */
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { beforeAll, describe, expect, it } from "vitest";
import { compileEncoder } from "../../shared/encoder/encode.ts";
import { loadTrainedModel } from "../../trainer/artifact/trained-model.ts";
import { loadDataset } from "../../trainer/data/load-dataset.ts";
import { readSpecFile } from "../../trainer/data/read-spec.ts";
import { exportModelDir } from "../../trainer/export/export-model.ts";
import { openSession, runHeads } from "../../trainer/export/onnx-session.ts";
import { headOutput, paramsFromWeights } from "../../trainer/models/network.ts";
import type { HeadSpec } from "../../trainer/models/types.ts";
import { selectBackend } from "../../trainer/train/backend.ts";
import { headLoss } from "../../trainer/train/loss.ts";
import { scaleHeads, targetScale } from "../../trainer/train/target-scale.ts";
import { predictNetwork } from "../../trainer/train/train-network.ts";
import { runTraining } from "../../trainer/workflows/train-and-report.ts";
import { lcg } from "./lcg.ts";

beforeAll(async () => {
  await selectBackend("cpu");
});

describe("targetScale", () => {
  it("is the mean and standard deviation of the labelled values; std 1 for a constant label", () => {
    const s = targetScale(Float32Array.from([1, 3, Number.NaN, 5, 7]));
    expect(s.mean).toBeCloseTo(4, 9);
    expect(s.std).toBeCloseTo(Math.sqrt(5), 6);
    expect(targetScale([2500, 2500, 2500])).toEqual({ mean: 2500, std: 1 });
  });

  it("keeps a warm-started head's earlier scale (or none, for a model from before scales)", () => {
    const heads: HeadSpec[] = [
      { name: "click", type: "binary" },
      { name: "spend", type: "regression" },
    ];
    const labels = { click: [0, 1], spend: [10, 30] };
    expect(scaleHeads(heads, labels)[1]!.scale).toEqual({ mean: 20, std: 10 });
    expect(scaleHeads(heads, labels)[0]).toEqual(heads[0]);
    const earlier = { name: "spend", type: "regression" as const, scale: { mean: 5, std: 2 } };
    expect(scaleHeads(heads, labels, [earlier])[1]!.scale).toEqual({ mean: 5, std: 2 });
    expect(scaleHeads(heads, labels, [{ name: "spend", type: "regression" }])[1]!.scale).toBeUndefined();
  });

  it("trains on standardised labels (Huber's delta scaled with them) and serves label units", () => {
    const head: HeadSpec = { name: "spend", type: "regression", scale: { mean: 100, std: 20 } };
    const z = tf.tensor2d([[0.5], [-1]]);
    const y = tf.tensor2d([[100], [140]]);
    // Standardised labels 0 and 2: ((0.5)² + 3²) / 2.
    expect(headLoss(head, z, y).dataSync()[0]).toBeCloseTo((0.25 + 9) / 2, 5);
    // delta 10 label units = 0.5 standardised: ½·0.25 (inside) and 0.5·(3 − 0.25) (outside).
    const huber = { ...head, loss: "huber" as const, delta: 10 };
    expect(headLoss(huber, z, y).dataSync()[0]).toBeCloseTo((0.125 + 0.5 * (3 - 0.25)) / 2, 5);
    expect([...headOutput(head, z).dataSync()]).toEqual([110, 80]);
    const logged = { ...head, transform: "log1p" as const, scale: { mean: 2, std: 0.5 } };
    expect(headOutput(logged, tf.tensor2d([[2]])).dataSync()[0]).toBeCloseTo(Math.exp(3) - 1, 4);
  });
});

/** Spend in cents (around 4,000, sd ~1,700) follows x2 and x1; click follows x1 and c. */
async function spendData(
  rows: number,
  seed: number,
): Promise<{ data: string; spec: string; clickOnly: string }> {
  const dir = await mkdtemp(join(tmpdir(), "mtrank-scale-"));
  const random = lcg(seed);
  const lines = ["x1,x2,c,clicked,spend"];
  for (let i = 0; i < rows; i++) {
    const [x1, x2] = [random() * 2 - 1, random() * 2 - 1];
    const c = "abcd"[Math.floor(random() * 4)]!;
    const click = random() < 1 / (1 + Math.exp(-(2 * x1 + (c === "a" ? 1 : -0.5)))) ? 1 : 0;
    const spend = 4000 + 2500 * x2 + 800 * x1 + 200 * (random() - 0.5);
    lines.push(`${x1.toFixed(4)},${x2.toFixed(4)},${c},${click},${spend.toFixed(0)}`);
  }
  const data = join(dir, "data.csv");
  await writeFile(data, `${lines.join("\n")}\n`);
  const features = [
    { name: "x1", type: "numeric" },
    { name: "x2", type: "numeric" },
    { name: "c", type: "categorical" },
  ];
  const click = { name: "click", type: "binary", column: "clicked" };
  const spec = join(dir, "spec.json");
  await writeFile(
    spec,
    JSON.stringify({
      format: "csv",
      features,
      tasks: [click, { name: "spend", type: "regression", column: "spend" }],
    }),
  );
  const clickOnly = join(dir, "click.json");
  await writeFile(clickOnly, JSON.stringify({ format: "csv", features, tasks: [click] }));
  return { data, spec, clickOnly };
}

describe("training a regression head in large units", () => {
  it("fits it (R² > 0.9), leaves the binary task's AUC as alone, and exports the same outputs", async () => {
    const { data, spec, clickOnly } = await spendData(4000, 3);
    const dir = await mkdtemp(join(tmpdir(), "mtrank-scale-model-"));
    const options = { arch: "mmoe", data, epochs: 6, seed: 5 };
    const both = await runTraining({ ...options, spec, out: dir });
    const alone = await runTraining({ ...options, spec: clickOnly });
    const trained = await loadTrainedModel(dir);
    const scale = trained.config.heads.find((h) => h.name === "spend")!.scale!;
    expect(scale.mean).toBeGreaterThan(3800);
    expect(scale.mean).toBeLessThan(4200);
    expect(scale.std).toBeGreaterThan(1000);

    const dataset = await loadDataset(data, await readSpecFile(spec));
    const spend = dataset.labels.spend!;
    const mean = spend.reduce((s, y) => s + y, 0) / spend.length;
    const variance = spend.reduce((s, y) => s + (y - mean) ** 2, 0) / spend.length;
    expect(both.validation.spend!.mse!).toBeLessThan(0.1 * variance);
    expect(both.validation.click!.auc!).toBeGreaterThan(alone.validation.click!.auc! - 0.01);

    const { manifest, onnxBytes } = await exportModelDir(dir);
    const batch = compileEncoder(manifest.features).encodeRows(dataset.rows.slice(0, 500));
    const params = paramsFromWeights(trained.weights);
    const expected = predictNetwork(params, trained.config, batch).spend!;
    tf.dispose(Object.values(params));
    const actual = (await runHeads(await openSession(onnxBytes), manifest, batch)).spend!;
    for (let i = 0; i < expected.length; i++)
      expect(Math.abs(actual[i]! - expected[i]!)).toBeLessThanOrEqual(1e-5 * Math.abs(expected[i]!) + 1e-3);
    // Served in cents, not standardised units.
    expect(Math.max(...expected)).toBeGreaterThan(5000);
  }, 120_000);
});
