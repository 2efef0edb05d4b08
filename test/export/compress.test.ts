/** compress: magnitude pruning (mask held through fine-tuning) and distillation into a smaller student. */
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import * as tf from "@tensorflow/tfjs";
import { beforeAll, describe, expect, it } from "vitest";
import { loadTrainedModel, type TrainedModel } from "../../trainer/artifact/trained-model.ts";
import { blendTargets, teacherTargets } from "../../trainer/compress/distill.ts";
import { tensorParams } from "../../trainer/compress/fine-tune.ts";
import { loadWithEncoder } from "../../trainer/compress/labelled-data.ts";
import { magnitudeMasks, maskWeights, sparsityOf } from "../../trainer/compress/prune.ts";
import { type DistillSummary, runDistill } from "../../trainer/compress/run-distill.ts";
import { type PruneSummary, runPrune } from "../../trainer/compress/run-prune.ts";
import { readSpecFile } from "../../trainer/data/read-spec.ts";
import { exportModelDir } from "../../trainer/export/export-model.ts";
import type { Weights } from "../../trainer/models/types.ts";
import { writeSimulation } from "../../trainer/simulate/simulator.ts";
import { selectBackend } from "../../trainer/train/backend.ts";
import { defaultBatchSize } from "../../trainer/train/step-budget.ts";
import { predictNetwork } from "../../trainer/train/train-network.ts";
import { runTraining } from "../../trainer/workflows/train-and-report.ts";
import { SMALL_WORLD } from "../fixtures/small-world.ts";

const SEED = 7;
let work: string;
let dataPath: string;
let specPath: string;
let teacherDir: string;
let teacher: TrainedModel;

beforeAll(async () => {
  await selectBackend("cpu");
  work = await mkdtemp(join(tmpdir(), "mtrank-compress-"));
  const sim = writeSimulation(join(work, "sim"), { ...SMALL_WORLD, seed: SEED, requests: 3000 });
  dataPath = sim.dataPath;
  specPath = sim.specPath;
  teacherDir = join(work, "teacher");
  await runTraining({ data: dataPath, spec: specPath, arch: "mmoe", out: teacherDir, epochs: 3, seed: SEED });
  teacher = await loadTrainedModel(teacherDir);
}, 240_000);

describe("magnitudeMasks", () => {
  const weights: Weights = {
    "a/kernel": { shape: [2, 3], values: new Float32Array([0.5, -0.1, 0.3, -0.9, 0.05, 0.2]) },
    "a/bias": { shape: [3], values: new Float32Array([0.01, 0.02, 0.03]) },
    embedding: { shape: [2, 2], values: new Float32Array([0.001, 1, 2, 3]) },
  };

  it("zeroes floor(sparsity · size) of each kernel, smallest |w| first, and nothing else", () => {
    const masks = magnitudeMasks(weights, { sparsity: 0.5 });
    expect(Object.keys(masks)).toEqual(["a/kernel"]);
    expect(Array.from(masks["a/kernel"]!)).toEqual([1, 0, 1, 1, 0, 0]);
    const pruned = maskWeights(weights, masks);
    expect(Array.from(pruned["a/kernel"]!.values)).toEqual([0.5, 0, 0.3, -0.9, 0, 0].map(Math.fround));
    expect(pruned["a/bias"]).toBe(weights["a/bias"]);
    expect(sparsityOf(pruned)).toBe(0.5);
  });

  it("prunes the embedding table only when asked", () => {
    const masks = magnitudeMasks(weights, { sparsity: 0.5, embedding: true });
    expect(Array.from(masks.embedding!)).toEqual([0, 0, 1, 1]);
  });

  it("refuses a sparsity outside [0, 1), naming the flag", () => {
    expect(() => magnitudeMasks(weights, { sparsity: 1 })).toThrow(/--prune: sparsity must be in \[0, 1\)/);
    expect(() => magnitudeMasks(weights, { sparsity: Number.NaN })).toThrow(/--prune/);
  });
});

describe("compress --prune", () => {
  let summary: PruneSummary;
  let pruned: TrainedModel;
  const outDir = () => join(work, "pruned");

  beforeAll(async () => {
    summary = await runPrune({
      model: teacherDir,
      data: dataPath,
      out: outDir(),
      sparsity: 0.8,
      epochs: 2,
      backend: "cpu",
    });
    pruned = await loadTrainedModel(outDir());
  }, 240_000);

  it("keeps 80% of every kernel at exactly zero through fine-tuning, biases and table untouched by the mask", () => {
    for (const [name, w] of Object.entries(pruned.weights)) {
      const zeros = w.values.filter((v) => v === 0).length;
      if (name.endsWith("/kernel")) expect(zeros).toBe(Math.floor(0.8 * w.values.length));
      else expect(zeros).toBeLessThan(w.values.length * 0.5);
    }
    expect(summary.sparsity).toBeCloseTo(0.8, 2);
    // The teacher's file is large enough for one network and a held-out part.
    expect(teacher.training.folds).toBeUndefined();
    expect(summary.sourceInSample).toBe(false);
    // Fine-tuning moved the surviving weights (the mask is not a frozen copy).
    const kernel = "expert_0/0/kernel";
    const before = teacher.weights[kernel]!.values;
    const after = pruned.weights[kernel]!.values;
    expect(after.some((v, i) => v !== 0 && v !== before[i])).toBe(true);
  });

  it("fine-tuning recovers validation AUC (regression: R²) lost to pruning, to within 0.02 of the unpruned model", () => {
    expect(pruned.config.heads.map((h) => h.type)).toContain("regression");
    for (const head of pruned.config.heads) {
      if (head.type === "regression") {
        expect(summary.before[head.name]!.r2!).toBeGreaterThan(0); // better than the mean dwell
        expect(summary.after[head.name]!.r2!).toBeGreaterThan(summary.before[head.name]!.r2! - 0.02);
        continue;
      }
      const before = summary.before[head.name]!.auc!;
      const after = summary.after[head.name]!.auc!;
      expect(after).toBeGreaterThan(0.52);
      expect(after).toBeGreaterThan(before - 0.02);
    }
    const binary = pruned.config.heads.filter((h) => h.type === "binary");
    const mean = (m: PruneSummary["after"]) =>
      binary.reduce((s, h) => s + m[h.name]!.auc!, 0) / binary.length;
    expect(mean(summary.after)).toBeGreaterThanOrEqual(mean(summary.pruned));
  });

  it("exports a dense int8 graph that gzips smaller than the unpruned one", async () => {
    const a = await exportModelDir(teacherDir, { int8: true });
    const b = await exportModelDir(outDir(), { int8: true });
    // Same graph shape: the file sizes match before compression.
    expect(b.int8Bytes!.length).toBe(a.int8Bytes!.length);
    const gz = (bytes: Uint8Array) => gzipSync(bytes, { level: 9 }).length;
    expect(gz(b.int8Bytes!)).toBeLessThan(0.8 * gz(a.int8Bytes!));
    const record = JSON.parse(await readFile(join(outDir(), "training", "compression.json"), "utf8"));
    expect(record).toMatchObject({ method: "prune", sparsity: 0.8 });
  });
});

describe("compress --distill-from", () => {
  it("blends labels and teacher outputs by alpha, and refuses alpha outside [0, 1]", () => {
    const labels = { click: new Float32Array([1, 0]) };
    const out = blendTargets(labels, { click: new Float32Array([0.5, 0.25]) }, 0.25);
    expect(Array.from(out.click!)).toEqual([0.625, 0.1875]);
    expect(() => blendTargets(labels, labels, 1.5)).toThrow(/--alpha/);
  });

  it("takes the teacher's targets from its own network: its predictions (regression: in log1p units)", async () => {
    const spec = await readSpecFile(specPath);
    const { valid } = await loadWithEncoder(dataPath, spec, teacher.encoder, {
      validFraction: 0.1,
      seed: SEED,
    });
    const targets = teacherTargets(teacher.config, teacher.weights, valid);
    const params = tensorParams(teacher.weights);
    const reference = predictNetwork(params, teacher.config, valid);
    tf.dispose(Object.values(params));
    for (const head of teacher.config.heads) {
      const t = targets[head.name]!;
      expect(t.length).toBe(valid.rows);
      // A regression head's target is on the scale its loss reads labels on: transformed units.
      const scale = head.type === "regression" && head.transform === "log1p" ? Math.log1p : (v: number) => v;
      t.forEach((p, i) => {
        expect(p).toBeCloseTo(scale(reference[head.name]![i]!), 5);
      });
      expect(new Set(t).size).toBeGreaterThan(10); // soft, not labels
    }
  });

  it("trains a smaller student with the teacher's encoder that scores within 0.02 AUC of the teacher", async () => {
    const out = join(work, "student");
    const s: DistillSummary = await runDistill({
      teacher: teacherDir,
      data: dataPath,
      out,
      arch: "shared-bottom",
      options: { bottom: [64, 32], tower: [16] },
      epochs: 3,
      backend: "cpu",
    });
    const student = await loadTrainedModel(out);
    expect(student.config.arch).toBe("shared-bottom");
    expect(student.encoder).toEqual(teacher.encoder);
    expect(s.sourceInSample).toBe(false);
    expect(s.parameters.student).toBeLessThan(s.parameters.teacher);
    for (const head of student.config.heads) {
      if (head.type === "regression") {
        expect(s.student[head.name]!.r2!).toBeGreaterThan(s.teacher[head.name]!.r2! - 0.02);
        continue;
      }
      // Its own calibration, fitted to its logits, not a copy of the teacher's.
      const own = teacher.config.heads.find((h) => h.name === head.name)!.calibration;
      expect(head.calibration, head.name).toBeDefined();
      expect(head.calibration, head.name).not.toEqual(own);
      expect(s.student[head.name]!.auc!).toBeGreaterThan(0.55);
      expect(s.student[head.name]!.auc!).toBeGreaterThan(s.teacher[head.name]!.auc! - 0.02);
    }
    const exported = await exportModelDir(out, { int8: true });
    const teacherBytes = (await exportModelDir(teacherDir)).onnxBytes.length;
    expect(exported.onnxBytes.length).toBeLessThan(teacherBytes);
  }, 240_000);

  it("gives a single-task student one embedding copy per head, each as wide as the teacher's", async () => {
    const out = join(work, "student-single");
    // A small file (3,000 rows): the step budget gives it a smaller batch than the 512 of a
    // large one.
    const small = join(work, "small.csv");
    const lines = (await readFile(dataPath, "utf8")).split("\n");
    await writeFile(small, `${lines.slice(0, 3001).join("\n")}\n`);
    const summary = await runDistill({
      teacher: teacherDir,
      data: small,
      out,
      arch: "single",
      options: { bottom: [16], tower: [8] },
      epochs: 1,
      backend: "cpu",
    });
    const student = await loadTrainedModel(out);
    // No --batch-size: the batch `train` would take for the same rows (the step budget).
    expect(summary.rows.train).toBeLessThan(3000);
    expect(summary.batchSize).toBe(defaultBatchSize(summary.rows.train));
    expect(summary.batchSize).toBeLessThan(512);
    expect(summary.epochs).toBe(1);
    const heads = student.config.heads.length;
    expect(teacher.config.embeddingCopies).toBeUndefined();
    expect(student.config.embeddingCopies).toBe(heads);
    expect(student.config.embeddingDim).toBe(teacher.config.embeddingDim * heads);
    expect(student.weights.embedding!.shape).toEqual([teacher.config.vocabSize, student.config.embeddingDim]);
  }, 240_000);

  it("refuses an unknown student architecture before reading data", async () => {
    await expect(
      runDistill({
        teacher: teacherDir,
        data: "/nonexistent.csv",
        out: join(work, "x"),
        arch: "nope",
        backend: "cpu",
      }),
    ).rejects.toThrow(/--arch: unknown architecture "nope"/);
  });
});
