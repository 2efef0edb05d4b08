import { describe, expect, it } from "vitest";
import { createRng } from "../../trainer/core/rng.ts";
import type { ImportanceReport } from "../../trainer/evaluate/importance.ts";
import { DEFAULT_ARCH_OPTIONS } from "../../trainer/models/types.ts";
import { renderReport } from "../../trainer/report/training-report.ts";
import { validationDiagnostics } from "../../trainer/report/validation-diagnostics.ts";

const validation = { click: { auc: 0.71, logloss: 0.4, positiveRate: 0.1, count: 100 } };
const heads = [{ name: "click", type: "binary" as const }];
const model = {
  config: {
    arch: "shared-bottom",
    options: DEFAULT_ARCH_OPTIONS,
    embeddingDim: 8,
    denseSize: 2,
    idSlots: 1,
    vocabSize: 10,
    heads,
  },
  encoder: {
    version: 1 as const,
    trim: true,
    missing: [""],
    denseSize: 2,
    idSlots: 1,
    vocabSize: 10,
    features: [
      {
        kind: "categorical" as const,
        name: "<b>item</b>",
        side: "item" as const,
        slot: 0,
        offset: 0,
        size: 10,
        vocab: [],
      },
    ],
  },
  validation,
  training: {
    createdAt: "2026-11-23T00:00:00Z",
    data: "logs.csv",
    seed: 1,
    epochs: 3,
    bestEpoch: 2,
    taskWeights: { click: 1 },
    trainRows: 900,
    validRows: 100,
    backend: "cpu",
    history: [1, 2, 3].map((epoch) => ({ epoch, trainLoss: 1 / epoch, score: 0.7, seconds: 1, validation })),
  },
};

/** A two-task model whose history logs adaptive task weights, and outputs to evaluate it on. */
function twoTaskModel() {
  const twoHeads = [
    { name: "click", type: "binary" as const },
    { name: "buy", type: "binary" as const },
  ];
  const epochValidation = {
    click: { auc: 0.7, logloss: 0.4, count: 500 },
    buy: { auc: 0.8, logloss: 0.1, count: 500 },
  };
  const history = [1, 2, 3, 4].map((epoch) => ({
    epoch,
    trainLoss: 1 / epoch,
    score: 0.75,
    seconds: 1,
    validation: epochValidation,
    taskWeights: { click: 1 / epoch, buy: 1 + epoch / 4 },
  }));
  const rng = createRng(4);
  const n = 500;
  const p = { click: new Float32Array(n), buy: new Float32Array(n) };
  const y = { click: new Float32Array(n), buy: new Float32Array(n) };
  for (let i = 0; i < n; i++) {
    p.click[i] = rng.uniform() * 0.4;
    p.buy[i] = rng.uniform() * 0.05;
    y.click[i] = rng.uniform() < p.click[i]! ? 1 : 0;
    y.buy[i] = y.click[i] && rng.uniform() < 0.3 ? 1 : 0;
  }
  return {
    model: {
      ...model,
      config: { ...model.config, heads: twoHeads },
      validation: epochValidation,
      training: { ...model.training, epochs: 4, taskWeights: { click: 1, buy: 1 }, history },
    },
    diagnostics: validationDiagnostics(twoHeads, y, p, { click: 1, buy: 2 }),
  };
}

const importance: ImportanceReport = {
  metric: { click: "auc", buy: "auc" },
  baseline: { click: 0.7, buy: 0.8 },
  features: [
    { feature: "item_id", drop: { click: 0.05, buy: 0.09 } },
    { feature: "hour", drop: { click: -0.001, buy: 0.002 } },
  ],
  rows: 500,
  seed: 7,
  repeats: 1,
};

describe("training report", () => {
  it("has a chart per curve, the metrics table and escaped names", () => {
    const html = renderReport(model);
    expect(html.match(/<svg /g)).toHaveLength(3); // loss, AUC, logloss; static weights: no weight chart
    expect(html).toContain("0.7100");
    expect(html).toContain("3 run, best 2");
    expect(html).toContain("click=1 (static)");
    expect(html).not.toContain("<b>item</b>");
    expect(html).toContain("&#60;b&#62;item");
    expect(html).not.toContain("Calibration");
  });

  it("draws task weights per epoch when the history logs them", () => {
    const { model: twoTask } = twoTaskModel();
    const html = renderReport(twoTask);
    expect(html).toContain("Task weights per epoch");
    expect(html.match(/<svg /g)).toHaveLength(4);
    expect(html).toMatch(/aria-label="Task weights per epoch"/);
  });

  it("adds calibration curves, the full metrics table, correlation and importance bars, without NaN", () => {
    const { model: twoTask, diagnostics } = twoTaskModel();
    const html = renderReport(twoTask, { ...diagnostics, importance });
    expect(html).toContain("Evaluation on the validation split (500 rows");
    for (const column of [
      "<th>accuracy</th>",
      "<th>precision</th>",
      "<th>F1</th>",
      "<th>ECE</th>",
      "<th>pred/obs</th>",
    ])
      expect(html).toContain(column);
    expect(html).toContain("<h2>Calibration</h2>");
    expect(html).toMatch(/aria-label="click: ECE 0\.\d{4}, predicted\/observed \d\.\d{4}"/);
    expect(html).toMatch(/aria-label="buy: ECE/);
    expect(html).toContain('stroke-dasharray="4 3"'); // the perfect-calibration diagonal
    expect(html).toContain("Task label correlation (Pearson)");
    expect(html).toContain('<table class="corr">');
    expect(html).toContain("Permutation feature importance");
    expect(html).toContain("<title>item_id: 0.0900</title>");
    // 3 curves + weights + 2 calibration + 2 importance
    expect(html.match(/<svg /g)).toHaveLength(8);
    expect(html).not.toMatch(/NaN|undefined|Infinity/);
    // buy is never predicted >= 0.5: precision is undefined and shows as "-"
    expect(diagnostics.tasks!.buy!.precision).toBeNaN();
  });

  it("draws a regression head's mean label against its mean prediction, in log1p units, masked rows left out", () => {
    const dwellHeads = [
      { name: "click", type: "binary" as const },
      { name: "dwell", type: "regression" as const, transform: "log1p" as const },
    ];
    const rng = createRng(9);
    const n = 400;
    const p = { click: new Float32Array(n), dwell: new Float32Array(n) };
    const y = { click: new Float32Array(n), dwell: new Float32Array(n) };
    for (let i = 0; i < n; i++) {
      p.click[i] = rng.uniform() * 0.5;
      y.click[i] = rng.uniform() < p.click[i]! ? 1 : 0;
      const z = 2 + rng.normal(); // log1p seconds
      p.dwell[i] = Math.expm1(z); // outputs are label units
      // Labels in log1p units, a little above the prediction; no label on unclicked rows.
      y.dwell[i] = y.click[i] ? z + 0.5 + 0.1 * rng.normal() : Number.NaN;
    }
    const d = validationDiagnostics(dwellHeads, y, p, { click: 1, dwell: 0 });
    const curve = d.reliability!.dwell!;
    expect(curve.reduce((s, b) => s + b.count, 0)).toBe(y.dwell.filter((v) => !Number.isNaN(v)).length);
    for (const bin of curve) {
      expect(bin.meanPredicted).toBeGreaterThan(-1);
      expect(bin.meanPredicted).toBeLessThan(5); // log1p units, not seconds
      expect(bin.observedRate - bin.meanPredicted).toBeCloseTo(0.5, 0);
    }
    const html = renderReport(
      { ...model, config: { ...model.config, heads: dwellHeads }, validation: d.tasks! },
      d,
    );
    expect(html).toMatch(/aria-label="dwell: R² -?\d\.\d{4}, MSE 0\.\d{4}"/);
    expect(html).toContain("Regression tasks: the mean label against the mean prediction");
    expect(html).not.toMatch(/NaN|undefined|Infinity/);
  });
});
