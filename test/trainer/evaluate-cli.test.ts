/** `npm run evaluate` end to end: a trained, exported model scored through onnxruntime. */
import { spawnSync } from "node:child_process";
import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import type { Comparison } from "../../trainer/evaluate/compare-models.ts";
import type { EvaluationReport } from "../../trainer/evaluate/evaluate-model.ts";
import { exportModelDir } from "../../trainer/export/export-model.ts";
import { runTraining } from "../../trainer/workflows/train-and-report.ts";

const DATA = "fixtures/real-logs/aliexpress_sample.csv";
const SPEC = "fixtures/specs/aliexpress.json";
let dir = "";
let other = "";

function evaluate(...args: string[]) {
  return spawnSync(
    "node_modules/.bin/tsx",
    ["trainer/cli/evaluate.ts", "--model", dir, "--data", DATA, ...args],
    {
      encoding: "utf8",
      timeout: 90_000,
    },
  );
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "mtrank-evaluate-"));
  await runTraining({ data: DATA, spec: SPEC, arch: "mmoe", out: dir, epochs: 1, seed: 9 });
  await exportModelDir(dir);
  other = await mkdtemp(join(tmpdir(), "mtrank-evaluate-other-"));
  await runTraining({ data: DATA, spec: SPEC, arch: "single", out: other, epochs: 1, seed: 10 });
  await exportModelDir(other);
}, 180_000);

describe("evaluate CLI", () => {
  it("--json carries per-task metrics, calibration, correlation, overall and importance", () => {
    const result = evaluate(
      "--json",
      "--importance",
      "--calibration-bins",
      "5",
      "--binning",
      "mass",
      "--gauc-by",
      "categorical_2",
    );
    expect(result.status, result.stderr).toBe(0);
    const report = JSON.parse(result.stdout) as EvaluationReport;
    expect(Object.keys(report.tasks)).toEqual(["click", "conversion"]);
    for (const task of ["click", "conversion"]) {
      const m = report.tasks[task]!;
      for (const key of ["auc", "logloss", "accuracy", "recall", "ece", "calibrationRatio"] as const)
        expect(typeof m[key], `${task}.${key}`).toBe("number");
      expect(m.accuracy).toBeGreaterThanOrEqual(0);
      expect(m.accuracy).toBeLessThanOrEqual(1);
      const bins = report.calibration[task]!;
      expect(bins.length).toBeLessThanOrEqual(5);
      expect(bins.reduce((s, b) => s + b.count, 0)).toBe(report.rows);
    }
    expect(report.calibrationBins).toEqual({ bins: 5, binning: "mass" });
    expect(report.gaucBy).toBe("categorical_2");
    // In this sample no search mixes clicked and unclicked rows; categorical_2 values do.
    expect(report.tasks.click!.gauc).toBeGreaterThan(0);
    expect(report.correlation.tasks).toEqual(["click", "conversion"]);
    expect(report.correlation.matrix[0]![0]).toBeCloseTo(1, 9);
    expect(report.correlation.matrix[0]![1]).toBe(report.correlation.matrix[1]![0]);
    expect(report.overall.tasks).toEqual(["click", "conversion"]);
    const aucs = [report.tasks.click!.auc!, report.tasks.conversion!.auc!];
    expect(report.overall.harmonicAuc).toBeCloseTo(2 / (1 / aucs[0]! + 1 / aucs[1]!), 9);
    const importance = report.importance!;
    expect(importance.features.map((f) => f.feature)).toContain("categorical_1");
    expect(importance.features).toHaveLength(79); // 16 categorical + 63 numeric features in the spec
    expect(importance.rows).toBe(report.rows);
    expect(importance.baseline.click).toBeCloseTo(report.tasks.click!.auc!, 5);
  }, 120_000);

  it("prints the tables as text, without NaN", () => {
    const result = evaluate("--importance", "--importance-top", "5", "--threshold", "0.2");
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/threshold 0\.2, ECE over 10 equal-width bins, GAUC by search_id/);
    expect(result.stdout).toMatch(/^task +auc +gauc +logloss +acc +prec +recall +f1 +ece +pred\/obs/m);
    expect(result.stdout).toMatch(/overall AUC over click, conversion/);
    expect(result.stdout).toContain("label correlation (Pearson)");
    expect(result.stdout).toContain("(top 5 of 79 shown)");
    expect(result.stdout).not.toMatch(/NaN/);
  }, 120_000);

  it("--report rewrites DIR/report.html with the evaluation's calibration and importance", async () => {
    const result = evaluate("--json", "--importance", "--importance-rows", "60", "--report");
    expect(result.status, result.stderr).toBe(0);
    expect(() => JSON.parse(result.stdout)).not.toThrow(); // the report path goes to stderr
    expect(result.stderr).toContain("report.html");
    const html = await readFile(join(dir, "report.html"), "utf8");
    expect(html).toContain("Evaluation on fixtures/real-logs/aliexpress_sample.csv (100 rows, model.onnx");
    expect(html).toContain("<h2>Calibration</h2>");
    expect(html).toContain("across 60 rows");
    expect(html).toContain("Validation AUC per task"); // the training curves are kept
    expect(html).not.toMatch(/NaN|undefined/);
  }, 120_000);

  it("--against scores a second model on the same rows: AUC differences with paired intervals", () => {
    const result = evaluate("--json", "--against", other);
    expect(result.status, result.stderr).toBe(0);
    const report = JSON.parse(result.stdout) as EvaluationReport & { against: Comparison };
    const alone = spawnSync(
      "node_modules/.bin/tsx",
      ["trainer/cli/evaluate.ts", "--model", other, "--data", DATA, "--json"],
      { encoding: "utf8", timeout: 90_000 },
    );
    const theirs = JSON.parse(alone.stdout) as EvaluationReport;
    const c = report.against;
    expect(c).toMatchObject({ level: 0.95, resamples: 1000 });
    expect(c.against.id).toBe(theirs.model.id);
    expect(Object.keys(c.tasks).length + c.skipped.length).toBeGreaterThan(0);
    for (const [task, t] of Object.entries(c.tasks)) {
      expect(t.auc).toBe(report.tasks[task]!.auc);
      expect(t.againstAuc).toBe(theirs.tasks[task]!.auc);
      expect(t.difference).toBeCloseTo(t.auc - t.againstAuc, 12);
      expect(t.low).toBeLessThanOrEqual(t.difference);
      expect(t.high).toBeGreaterThanOrEqual(t.difference);
      expect(t.high).toBeGreaterThan(t.low); // two different networks on 100 rows
      expect(t.rows).toBe(100);
    }

    const itself = JSON.parse(evaluate("--json", "--against", dir).stdout) as { against: Comparison };
    for (const t of Object.values(itself.against.tasks))
      expect([t.difference, t.low, t.high, t.notAbove]).toEqual([0, 0, 0, 1]);

    const text = evaluate("--against", other);
    expect(text.status, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^against .+: the same rows, paired bootstrap over them \(1000 resamples\)/m);
    expect(text.stdout).toMatch(/^task +auc +against +difference +95% interval +not above +rows$/m);
    expect(text.stdout).toMatch(/^click +0\.\d{4} +0\.\d{4} +[+−]0\.\d{4} +\[[+−]0\.\d{4}, [+−]0\.\d{4}\]/m);
    expect(text.stdout).not.toMatch(/NaN/);

    const missing = evaluate("--against", join(other, "nothing"));
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/--against: .*nothing has no readable manifest.json/);
  }, 180_000);

  it("names the option when an argument is wrong", () => {
    const missing = evaluate("--gauc-by", "no_such_column");
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/--gauc-by: the data has no column "no_such_column"/);
    const threshold = evaluate("--threshold", "2");
    expect(threshold.status).not.toBe(0);
    expect(threshold.stderr).toMatch(/--threshold/);
    expect(evaluate("--binning", "quantile").stderr).toMatch(/--binning/);
  }, 120_000);
});
