/**
 * Change rules with `confidence` (trainer/pipeline/gate.ts): the drop's upper bound from a paired
 * bootstrap over the rows both models scored, held to the rule's bound.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { logloss } from "../../trainer/core/metrics.ts";
import { createRng } from "../../trainer/core/rng.ts";
import { labelledAuc } from "../../trainer/metrics/labelled-rows.ts";
import { evaluateTask } from "../../trainer/metrics/task-metrics.ts";
import type { ChangeRule, GateConfig } from "../../trainer/pipeline/config.ts";
import { evaluateGate, type GateInput, type ModelScores } from "../../trainer/pipeline/gate.ts";

/**
 * `rows` labelled rows drawn from a latent score, and two models that read it through noise of
 * their own: `noise` 0 reads it exactly; equal noise, equally good models.
 */
function world(rows: number, seed: number) {
  const rng = createRng(seed);
  const latent = Float64Array.from({ length: rows }, () => rng.normal());
  const labels = Float32Array.from(latent, (z) => (rng.uniform() < 1 / (1 + Math.exp(-1.5 * z)) ? 1 : 0));
  const model = (noise: number): Float32Array => Float32Array.from(latent, (z) => z + noise * rng.normal());
  return { labels, model };
}

function scoresOf(labels: Float32Array, click: Float32Array): ModelScores {
  return {
    holdout: {
      rows: labels.length,
      tasks: { click: { auc: labelledAuc(labels, click), count: labels.length } },
    },
    sizes: { modelBytes: 1 },
    rowScores: { holdout: { click } },
  };
}

const rule = (over: Partial<ChangeRule> = {}): ChangeRule => ({
  task: "click",
  metric: "auc",
  direction: "higher",
  on: "holdout",
  maxDrop: 0.01,
  confidence: 0.95,
  ...over,
});

const gate = (...changes: ChangeRule[]): GateConfig => ({ floors: [], changes, infra: false });

function judge(changes: ChangeRule[], labels: Float32Array, candidate: Float32Array, champion: Float32Array) {
  const input: GateInput = {
    candidate: scoresOf(labels, candidate),
    champion: scoresOf(labels, champion),
    labels: { holdout: { click: labels } },
  };
  return evaluateGate(gate(...changes), input);
}

describe("gate: change rules with a confidence bound", () => {
  it("a level candidate on a small holdout passes the point rule and not the bound; a large one shows it", () => {
    // Two equally good models measure from −0.018 to +0.049 apart on 400 rows (seeds 1–11); on
    // this draw the candidate measures 0.0063 worse, inside the point rule's 0.01.
    const small = world(400, 9);
    const [candidate, champion] = [small.model(1), small.model(1)];
    const point = judge([rule({ confidence: undefined })], small.labels, candidate, champion);
    const bounded = judge([rule()], small.labels, candidate, champion);
    expect(point.blessed).toBe(true);
    expect(bounded.blessed).toBe(false);
    const result = bounded.results[0]!;
    expect(result.rule).toBe(
      "change click auc vs champion (higher is better): drop <= 0.01 at 95% confidence",
    );
    // The bound sits above the measured drop, past the rule's bound.
    expect(result.value!).toBeGreaterThan(point.results[0]!.value! + 0.01);
    expect(result.detail).toMatch(
      /: drop -?0\.\d+, upper bound 0\.\d+ > 0\.01 \(95%, paired bootstrap over 400 rows\); the measured drop is within it, but the data is too small to show it$/,
    );

    // At 50% the bound is the resampled drops' median: the measured drop, give or take.
    const median = judge([rule({ confidence: 0.5 })], small.labels, candidate, champion).results[0]!.value!;
    expect(Math.abs(median - point.results[0]!.value!)).toBeLessThan(0.004);

    const large = world(40_000, 9);
    const wide = judge([rule()], large.labels, large.model(1), large.model(1));
    expect(wide.blessed, wide.results[0]!.detail).toBe(true);
    expect(wide.results[0]!.value!).toBeLessThan(0.01);
  });

  it("a clearly better candidate passes even a zero bound on a small holdout; a clearly worse one fails", () => {
    const { labels, model } = world(400, 5);
    const [sharp, blurred] = [model(0), model(2)];
    const better = judge([rule({ maxDrop: 0 })], labels, sharp, blurred);
    expect(better.blessed, better.results[0]!.detail).toBe(true);
    expect(better.results[0]!.value!).toBeLessThan(0);
    const worse = judge([rule({ maxDrop: 0.02 })], labels, blurred, sharp);
    expect(worse.blessed).toBe(false);
    expect(worse.results[0]!.detail).not.toMatch(/too small/);
  });

  it("a higher confidence never loosens the bound (property)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 1000 }),
        fc.double({ min: 0.5, max: 0.98, noNaN: true }),
        fc.double({ min: 0.001, max: 0.019, noNaN: true }),
        (seed, low, step) => {
          const { labels, model } = world(150, seed);
          const [a, b] = [model(1), model(1.2)];
          const bounds = [low, low + step].map(
            (confidence) => judge([rule({ confidence })], labels, a, b).results[0]!.value!,
          );
          expect(bounds[1]!).toBeGreaterThanOrEqual(bounds[0]!);
        },
      ),
      { numRuns: 25 },
    );
  });

  it("bounds the relative drop, and reads the newest slice's rows (unlabelled rows left out)", () => {
    const { labels, model } = world(600, 9);
    const [a, b] = [model(1), model(1)];
    const ratio = judge([rule({ maxDrop: undefined, maxRatioDrop: 0.5 })], labels, a, b);
    const plain = judge([rule()], labels, a, b);
    expect(ratio.results[0]!.value!).toBeCloseTo(plain.results[0]!.value! / labelledAuc(labels, b), 12);
    const both = judge([rule({ maxRatioDrop: 0.5 })], labels, a, b).results.map((r) => r.value!);
    expect(both).toEqual([plain.results[0]!.value!, ratio.results[0]!.value!]);
    expect(ratio.results[0]!.detail).toMatch(/relative drop -?\d+(\.\d+)?%, upper bound \d+(\.\d+)?% <= 50%/);

    const newest = world(300, 10);
    const newestLabels = newest.labels.map((y, i) => (i % 3 === 0 ? Number.NaN : y));
    const [sharp, blurred] = [newest.model(0), newest.model(3)];
    const input: GateInput = {
      candidate: { ...scoresOf(labels, a), rowScores: { holdout: { click: a }, newest: { click: blurred } } },
      champion: { ...scoresOf(labels, a), rowScores: { holdout: { click: a }, newest: { click: sharp } } },
      labels: { holdout: { click: labels }, newest: { click: newestLabels } },
    };
    input.candidate.newest = {
      rows: 300,
      tasks: { click: { auc: labelledAuc(newestLabels, blurred), count: 200 } },
    };
    input.champion!.newest = {
      rows: 300,
      tasks: { click: { auc: labelledAuc(newestLabels, sharp), count: 200 } },
    };
    const d = evaluateGate(gate(rule({ maxDrop: 0 }), rule({ maxDrop: 0, on: "newest" })), input);
    expect(d.results.map((r) => r.passed)).toEqual([true, false]);
    expect(d.results[0]!.value).toBe(0); // the same scores on both sides: no drop in any resample
    expect(d.results[1]!.detail).toMatch(/paired bootstrap over 200 rows\)$/);
  });

  it("logloss: the bound on a small holdout refuses a level candidate; on a large one it passes", () => {
    const probs = (s: Float32Array) => Float32Array.from(s, (x) => 1 / (1 + Math.exp(-1.5 * x)));
    const scored = (labels: Float32Array, p: Float32Array): ModelScores => ({
      holdout: {
        rows: labels.length,
        tasks: { click: { logloss: logloss(labels, p), count: labels.length } },
      },
      sizes: { modelBytes: 1 },
      rowScores: { holdout: { click: p } },
    });
    const lossRule = rule({ metric: "logloss", direction: "lower", maxDrop: 0.01 });
    const verdict = (rows: number, candidateNoise: number, championNoise: number) => {
      const { labels, model } = world(rows, 9);
      const [candidate, champion] = [probs(model(candidateNoise)), probs(model(championNoise))];
      const input: GateInput = {
        candidate: scored(labels, candidate),
        champion: scored(labels, champion),
        labels: { holdout: { click: labels } },
      };
      const point = evaluateGate(gate({ ...lossRule, confidence: undefined }), input).results[0]!;
      return { point, bounded: evaluateGate(gate(lossRule), input).results[0]! };
    };
    const small = verdict(400, 1, 1);
    expect(small.point.passed).toBe(true);
    expect(small.bounded.passed).toBe(false);
    expect(small.bounded.value!).toBeGreaterThan(small.point.value!);
    expect(small.bounded.detail).toMatch(/paired bootstrap over 400 rows\); the measured drop is within it/);
    expect(verdict(40_000, 1, 1).bounded.passed).toBe(true);
    const better = verdict(400, 0, 2).bounded;
    expect(better.passed, better.detail).toBe(true);
    expect(better.value!).toBeLessThan(0);
  });

  it("mse and mae: the rows' mean losses, regression rows without a label left out", () => {
    const rng = createRng(21);
    const rows = 500;
    const truth = Float64Array.from({ length: rows }, () => rng.normal());
    const labels = Float32Array.from(truth, (t, i) => (i % 5 === 0 ? Number.NaN : t + 0.5 * rng.normal()));
    const sharp = Float32Array.from(truth, (t) => t + 0.1 * rng.normal());
    const blurred = Float32Array.from(truth, (t) => t + 1.5 * rng.normal());
    const scored = (values: Float32Array): ModelScores => ({
      holdout: { rows, tasks: { dwell: { mse: 1, mae: 1, count: 400 } } },
      sizes: { modelBytes: 1 },
      rowScores: { holdout: { dwell: values } },
    });
    const lower = (metric: "mse" | "mae", maxDrop: number): ChangeRule =>
      rule({ task: "dwell", metric, direction: "lower", maxDrop });
    const judged = (candidate: Float32Array, champion: Float32Array) =>
      evaluateGate(gate(lower("mse", 0), lower("mae", 0)), {
        candidate: scored(candidate),
        champion: scored(champion),
        labels: { holdout: { dwell: labels } },
      }).results;
    const better = judged(sharp, blurred);
    expect(better.map((r) => r.passed)).toEqual([true, true]);
    expect(better[0]!.detail).toMatch(/paired bootstrap over 400 rows\)$/);
    // MSE grows by about 1.5² − 0.1² ≈ 2.24 from the sharp model to the blurred one.
    const worse = judged(blurred, sharp);
    expect(worse.map((r) => r.passed)).toEqual([false, false]);
    expect(worse[0]!.value!).toBeGreaterThan(2);
    expect(worse[0]!.value!).toBeLessThan(3);
  });

  it("r2 and ece: each resample computes both models' statistic; the point drop is evaluate's", () => {
    const rng = createRng(31);
    const rows = 4000;
    const truth = Float64Array.from({ length: rows }, () => rng.normal());
    // Regression: a sharp and a blurred reading of the truth; rows without a label left out.
    const labels = Float32Array.from(truth, (t, i) => (i % 7 === 0 ? Number.NaN : t + 0.5 * rng.normal()));
    const sharp = Float32Array.from(truth, (t) => t + 0.2 * rng.normal());
    const blurred = Float32Array.from(truth, (t) => t + 0.6 * rng.normal());
    // Binary: labels drawn from p; a calibrated model and one that over-predicts by 0.08.
    const p = Float32Array.from(truth, (t) => 1 / (1 + Math.exp(-t)));
    const clicks = Float32Array.from(p, (q) => (rng.uniform() < q ? 1 : 0));
    const high = Float32Array.from(p, (q) => Math.min(1, q + 0.08));
    const scored = (dwell: Float32Array, click: Float32Array): ModelScores => {
      const head = (name: string, type: "binary" | "regression") => ({ name, type, output: name });
      const metrics = (h: ReturnType<typeof head>, y: Float32Array, v: Float32Array) =>
        evaluateTask(h, y, v).metrics;
      return {
        holdout: {
          rows,
          tasks: {
            dwell: metrics(head("dwell", "regression"), labels, dwell),
            click: metrics(head("click", "binary"), clicks, click),
          },
        },
        sizes: { modelBytes: 1 },
        rowScores: { holdout: { dwell, click } },
      };
    };
    const rules = (maxDrop: number): ChangeRule[] => [
      rule({ task: "dwell", metric: "r2", direction: "higher", maxDrop }),
      rule({ task: "click", metric: "ece", direction: "lower", maxDrop }),
    ];
    const judged = (candidate: ModelScores, champion: ModelScores, maxDrop: number) =>
      evaluateGate(gate(...rules(maxDrop)), {
        candidate,
        champion,
        labels: { holdout: { dwell: labels, click: clicks } },
      }).results;
    const good = scored(sharp, p);
    const worse = scored(blurred, high);
    const refused = judged(worse, good, 0.02);
    expect(refused.map((r) => r.passed)).toEqual([false, false]);
    // The point drops in the details are the metrics evaluate reports, differenced.
    const r2Drop = good.holdout.tasks.dwell!.r2! - worse.holdout.tasks.dwell!.r2!;
    const eceDrop = worse.holdout.tasks.click!.ece! - good.holdout.tasks.click!.ece!;
    expect(r2Drop).toBeGreaterThan(0.1);
    expect(eceDrop).toBeGreaterThan(0.03);
    expect(refused[0]!.detail).toContain(`drop ${r2Drop.toFixed(4)}`);
    expect(refused[1]!.detail).toContain(`drop ${eceDrop.toFixed(4)}`);
    expect(refused[0]!.detail).toMatch(/paired bootstrap over 3428 rows\)$/);
    expect(refused[1]!.detail).toMatch(/paired bootstrap over 4000 rows\)$/);
    for (const [r, drop] of [
      [refused[0]!, r2Drop],
      [refused[1]!, eceDrop],
    ] as const)
      expect(r.value!).toBeGreaterThan(drop);
    // The better model against the worse passes a bound of 0; the same model against itself
    // bounds at exactly 0.
    expect(judged(good, worse, 0).map((r) => r.passed)).toEqual([true, true]);
    expect(judged(good, good, 0).map((r) => r.value)).toEqual([0, 0]);
  });

  it("ndcg10: resamples the groups, leaving out groups without gains", () => {
    const rng = createRng(5);
    /** Per group NDCG@10 of two models: `gap` apart on average, noisy, every tenth group without gains. */
    const groups = (n: number, gap: number) => {
      const base = Float64Array.from({ length: n }, () => 0.5 + 0.2 * rng.normal());
      const gainless = (g: number) => g % 10 === 0;
      const champion = Float64Array.from(base, (b, g) => (gainless(g) ? Number.NaN : b + 0.1 * rng.normal()));
      const candidate = Float64Array.from(base, (b, g) =>
        gainless(g) ? Number.NaN : b - gap + 0.1 * rng.normal(),
      );
      return { candidate, champion };
    };
    const judged = (n: number, gap: number, maxDrop: number) => {
      const { candidate, champion } = groups(n, gap);
      const scores = (values: Float64Array, ndcg10: number): ModelScores => ({
        holdout: { rows: n * 10, tasks: {}, ranking: { ndcg10 } },
        sizes: { modelBytes: 1 },
        groupNdcg10: { holdout: values },
      });
      const mean = (v: Float64Array) =>
        v.filter((x) => !Number.isNaN(x)).reduce((a, b) => a + b, 0) / (n - n / 10);
      return evaluateGate(
        gate({ metric: "ndcg10", direction: "higher", on: "holdout", maxDrop, confidence: 0.95 }),
        { candidate: scores(candidate, mean(candidate)), champion: scores(champion, mean(champion)) },
      ).results[0]!;
    };
    const small = judged(40, 0, 0.01);
    expect(small.passed).toBe(false);
    expect(small.detail).toMatch(/paired bootstrap over 36 groups\)/);
    expect(judged(40_000, 0, 0.01).passed).toBe(true);
    const worse = judged(40_000, 0.02, 0.01);
    expect(worse.passed).toBe(false);
    expect(worse.value!).toBeGreaterThan(0.019);
  });

  it("fails, never passes, without the rows to bound the drop with", () => {
    const { labels, model } = world(100, 1);
    const input: GateInput = {
      candidate: { ...scoresOf(labels, model(1)), rowScores: {} },
      champion: scoresOf(labels, model(1)),
      labels: { holdout: { click: labels } },
    };
    const d = evaluateGate(gate(rule({ maxDrop: 1 })), input);
    expect(d.blessed).toBe(false);
    expect(d.results[0]!.detail).toMatch(/no per-row scores to bound the drop with$/);
  });
});
