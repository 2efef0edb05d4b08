import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  auc,
  groupNdcgs,
  maxScaledDiff,
  meanAbsoluteError,
  meanNdcg,
  meanSquaredError,
} from "../../trainer/core/metrics.ts";
import {
  calibrationCurve,
  expectedCalibrationError,
  predictedObservedRatio,
} from "../../trainer/metrics/calibration.ts";
import { labelCorrelation, pearson } from "../../trainer/metrics/correlation.ts";
import { groupAuc, groupAucDetail } from "../../trainer/metrics/group-auc.ts";
import { overallMetrics } from "../../trainer/metrics/summary.ts";
import { evaluateTask } from "../../trainer/metrics/task-metrics.ts";
import { thresholdMetrics } from "../../trainer/metrics/threshold.ts";

/** Labels (0/1) and probabilities of the same length, at least one row. */
const labelled = fc
  .integer({ min: 1, max: 60 })
  .chain((n) =>
    fc.tuple(
      fc.array(fc.constantFrom(0, 1), { minLength: n, maxLength: n }),
      fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: n, maxLength: n }),
    ),
  );

describe("auc", () => {
  it("is 1 for a perfect ranking, 0 for a reversed one, 0.5 for ties", () => {
    expect(auc([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9])).toBe(1);
    expect(auc([1, 1, 0, 0], [0.1, 0.2, 0.8, 0.9])).toBe(0);
    expect(auc([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5])).toBe(0.5);
    expect(auc([1, 1], [0.1, 0.2])).toBeNaN();
  });

  it("is NaN when a score is not a number: a broken model has no ranking to measure", () => {
    // A NaN breaks the sort's comparator and ===: all-NaN scores would read about 0.5 and pass a
    // pipeline floor of auc >= 0.5.
    const labels = Array.from({ length: 1000 }, (_, i) => i % 2);
    expect(auc(labels, new Array(1000).fill(Number.NaN))).toBeNaN();
    expect(
      auc(
        labels,
        labels.map((y, i) => (i === 7 ? Number.NaN : y)),
      ),
    ).toBeNaN();
  });

  it("depends only on the order of scores, and reversing the order gives 1 - AUC", () => {
    fc.assert(
      fc.property(labelled, ([y, p]) => {
        fc.pre(y.includes(0) && y.includes(1));
        const a = auc(y, p);
        expect(
          auc(
            y,
            p.map((v) => 4 * v),
          ),
        ).toBeCloseTo(a, 12);
        expect(
          auc(
            y,
            p.map((v) => -v),
          ),
        ).toBeCloseTo(1 - a, 12);
      }),
    );
  });
});

describe("thresholdMetrics", () => {
  it("counts a hand-made confusion matrix", () => {
    const m = thresholdMetrics([1, 1, 0, 0, 1], [0.9, 0.4, 0.6, 0.1, 0.5]);
    expect(m.confusion).toEqual({ tp: 2, fp: 1, tn: 1, fn: 1 });
    expect(m.accuracy).toBeCloseTo(3 / 5, 12);
    expect(m.precision).toBeCloseTo(2 / 3, 12);
    expect(m.recall).toBeCloseTo(2 / 3, 12);
    expect(m.f1).toBeCloseTo(2 / 3, 12);
    expect(thresholdMetrics([1, 0], [0.3, 0.2], 0.25).confusion).toEqual({ tp: 1, fp: 0, tn: 1, fn: 0 });
  });

  it("leaves precision undefined when nothing is predicted positive", () => {
    const m = thresholdMetrics([1, 0, 0], [0.1, 0.2, 0.3]);
    expect(m.precision).toBeNaN();
    expect(m.recall).toBe(0);
    expect(m.f1).toBeNaN();
  });

  it("partitions the rows, and F1 is the harmonic mean of precision and recall", () => {
    fc.assert(
      fc.property(labelled, fc.double({ min: 0, max: 1, noNaN: true }), ([y, p], t) => {
        const m = thresholdMetrics(y, p, t);
        const { tp, fp, tn, fn } = m.confusion;
        expect(tp + fp + tn + fn).toBe(y.length);
        expect(tp + fn).toBe(y.filter((v) => v === 1).length);
        expect(m.accuracy).toBeGreaterThanOrEqual(0);
        expect(m.accuracy).toBeLessThanOrEqual(1);
        if (m.precision > 0 && m.recall > 0)
          expect(1 / m.f1).toBeCloseTo((1 / m.precision + 1 / m.recall) / 2, 9);
      }),
    );
  });
});

describe("calibration", () => {
  it("bins by equal width and weighs the gap by bin size", () => {
    const y = [0, 0, 1, 1];
    const p = [0.05, 0.15, 0.85, 0.95];
    const bins = calibrationCurve(y, p);
    expect(bins.map((b) => [b.lo, b.count])).toEqual([
      [0, 1],
      [0.1, 1],
      [0.8, 1],
      [0.9, 1],
    ]);
    expect(expectedCalibrationError(bins)).toBeCloseTo((0.05 + 0.15 + 0.15 + 0.05) / 4, 12);
    expect(predictedObservedRatio(y, p)).toBeCloseTo(2 / 2, 12);
    expect(calibrationCurve([1], [1])[0]!.hi).toBe(1); // p = 1 falls in the last bin
  });

  it("equal-mass bins hold n/bins rows each", () => {
    const p = Array.from({ length: 100 }, (_, i) => ((i * 7919) % 100) / 1000);
    const y = p.map((v) => (v > 0.05 ? 1 : 0));
    const bins = calibrationCurve(y, p, { binning: "mass", bins: 10 });
    expect(bins.map((b) => b.count)).toEqual(Array(10).fill(10));
    expect(bins[0]!.lo).toBe(0);
    expect(bins[9]!.hi).toBeCloseTo(0.099, 12);
  });

  it("ECE lies in [0, 1], bins cover every row, and a constant at the base rate is calibrated", () => {
    fc.assert(
      fc.property(labelled, fc.constantFrom("width" as const, "mass" as const), ([y, p], binning) => {
        const bins = calibrationCurve(y, p, { binning, bins: 7 });
        expect(bins.reduce((s, b) => s + b.count, 0)).toBe(y.length);
        const ece = expectedCalibrationError(bins);
        expect(ece).toBeGreaterThanOrEqual(0);
        expect(ece).toBeLessThanOrEqual(1);
        const rate = y.reduce<number>((s, v) => s + v, 0) / y.length;
        const constant = y.map(() => rate);
        expect(expectedCalibrationError(calibrationCurve(y, constant, { binning }))).toBeCloseTo(0, 9);
        if (rate > 0) expect(predictedObservedRatio(y, constant)).toBeCloseTo(1, 9);
      }),
    );
  });

  it("measures against true probabilities: zero when the predictions are the truth, their gap otherwise", () => {
    const truth = Array.from({ length: 50 }, (_, i) => 0.001 + (((i * 37) % 50) / 50) * 0.08);
    for (const binning of ["width", "mass"] as const) {
      expect(expectedCalibrationError(calibrationCurve(truth, truth, { binning, bins: 5 }))).toBe(0);
      const doubled = truth.map((p) => 2 * p);
      const mean = truth.reduce((a, p) => a + p, 0) / truth.length;
      expect(expectedCalibrationError(calibrationCurve(truth, doubled, { binning, bins: 5 }))).toBeCloseTo(
        mean,
        12,
      );
    }
  });

  it("rejects a bad bin count", () => {
    expect(() => calibrationCurve([1], [0.5], { bins: 0 })).toThrow(/bins/);
  });
});

describe("regression errors", () => {
  it("MSE >= MAE² and both vanish on exact predictions", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(
            fc.double({ min: -1e3, max: 1e3, noNaN: true }),
            fc.double({ min: -1e3, max: 1e3, noNaN: true }),
          ),
          {
            minLength: 1,
            maxLength: 40,
          },
        ),
        (pairs) => {
          const y = pairs.map(([a]) => a);
          const v = pairs.map(([, b]) => b);
          const mae = meanAbsoluteError(y, v);
          expect(meanSquaredError(y, v)).toBeGreaterThanOrEqual(mae * mae * (1 - 1e-9) - 1e-9);
          expect(meanAbsoluteError(y, y)).toBe(0);
        },
      ),
    );
  });
});

describe("groupAuc", () => {
  it("weights each group's AUC by its size and skips one-class groups", () => {
    const labels = [1, 0, 0, 1, 0, 1, 1];
    const scores = [0.9, 0.1, 0.5, 0.2, 0.8, 0.3, 0.4];
    const groups = ["a", "a", "a", "b", "b", "c", "c"];
    // a: AUC 1 (3 rows), b: AUC 0 (2 rows), c: only positives, skipped.
    const detail = groupAucDetail(labels, scores, groups);
    expect(detail.gauc).toBeCloseTo(3 / 5, 12);
    expect(detail).toMatchObject({ groups: 2, skipped: 1 });
    expect(groupAuc([1, 1], [0.2, 0.3], ["x", "x"])).toBeNaN();
  });

  it("equals the AUC when every row is in one group", () => {
    fc.assert(
      fc.property(labelled, ([y, p]) => {
        fc.pre(y.includes(0) && y.includes(1));
        expect(
          groupAuc(
            y,
            p,
            y.map(() => "g"),
          ),
        ).toBeCloseTo(auc(y, p), 12);
      }),
    );
  });
});

describe("overallMetrics", () => {
  it("weights AUCs, takes their harmonic mean, and leaves out regression tasks", () => {
    const m = overallMetrics(
      {
        click: { auc: 0.8, count: 10 },
        buy: { auc: 0.6, count: 10 },
        dwell: { mse: 2, count: 10 },
      },
      { click: 1, buy: 3, dwell: 1 },
    );
    expect(m.weightedAuc).toBeCloseTo((0.8 + 3 * 0.6) / 4, 12);
    expect(m.harmonicAuc).toBeCloseTo(2 / (1 / 0.8 + 1 / 0.6), 12);
    expect(m.tasks).toEqual(["click", "buy"]);
  });

  it("harmonic mean never exceeds the unweighted mean", () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0.01, max: 1, noNaN: true }), { minLength: 1, maxLength: 6 }),
        (aucs) => {
          const m = overallMetrics(Object.fromEntries(aucs.map((a, i) => [`t${i}`, { auc: a, count: 1 }])));
          expect(m.harmonicAuc).toBeLessThanOrEqual(m.weightedAuc + 1e-12);
        },
      ),
    );
  });
});

describe("label correlation", () => {
  it("is symmetric, within [-1, 1], and ±1 against an affine copy", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.integer({ min: -1000, max: 1000 }).map((v) => v / 10),
          { minLength: 2, maxLength: 40 },
        ),
        fc.double({ min: 0.5, max: 5, noNaN: true }),
        (x, a) => {
          fc.pre(new Set(x).size > 1);
          expect(
            pearson(
              x,
              x.map((v) => a * v + 3),
            ),
          ).toBeCloseTo(1, 9);
          expect(
            pearson(
              x,
              x.map((v) => -a * v),
            ),
          ).toBeCloseTo(-1, 9);
          const y = x.map((v, i) => v * ((i % 3) - 1));
          const { matrix } = labelCorrelation({ x, y });
          expect(matrix[0]![1]).toBe(matrix[1]![0]);
          if (!Number.isNaN(matrix[0]![1]!)) expect(Math.abs(matrix[0]![1]!)).toBeLessThanOrEqual(1);
        },
      ),
    );
  });

  it("is NaN for a constant label", () => {
    const { tasks, matrix } = labelCorrelation({ a: [1, 0, 1], b: [0, 0, 0] });
    expect(tasks).toEqual(["a", "b"]);
    expect(matrix[0]![0]).toBeCloseTo(1, 12);
    expect(matrix[0]![1]).toBeNaN();
  });
});

describe("evaluateTask", () => {
  it("gives binary heads ranking, threshold and calibration numbers", () => {
    const { metrics, calibration } = evaluateTask(
      { name: "click", type: "binary" },
      [0, 1, 1, 0],
      [0.2, 0.7, 0.4, 0.1],
      { groups: ["a", "a", "b", "b"] },
    );
    expect(metrics).toMatchObject({ auc: 1, gauc: 1, accuracy: 0.75, precision: 1, recall: 0.5, count: 4 });
    expect(metrics.calibrationRatio).toBeCloseTo(1.4 / 2, 12);
    expect(calibration!.length).toBeGreaterThan(0);
  });

  it("maps log1p regression outputs back to the label's transformed units", () => {
    const labels = [Math.log1p(3), Math.log1p(0)];
    const { metrics } = evaluateTask(
      { name: "dwell", type: "regression", transform: "log1p" },
      labels,
      [3, 1],
    );
    expect(metrics.mse).toBeCloseTo(Math.log1p(1) ** 2 / 2, 9);
    expect(metrics.mae).toBeCloseTo(Math.log1p(1) / 2, 9);
    expect(metrics.auc).toBeUndefined();
  });

  it("reports R²: 1 for exact outputs, 0 for the labels' mean, 1 − mse / variance between", () => {
    const head = { name: "spend", type: "regression" } as const;
    const labels = [1, 2, 3, 6];
    const r2 = (outputs: number[]) => evaluateTask(head, labels, outputs).metrics.r2;
    expect(r2(labels)).toBe(1);
    expect(r2([3, 3, 3, 3])).toBeCloseTo(0, 12);
    // variance 3.5; mse (0.25 + 0 + 0.25 + 1) / 4 = 0.375
    expect(r2([1.5, 2, 2.5, 5])).toBeCloseTo(1 - 0.375 / 3.5, 12);
    expect(r2([4, 4, 4, 4])).toBeLessThan(0);
    expect(evaluateTask(head, [2, 2], [1, 2]).metrics.r2).toBeNaN();
  });
});

describe("meanNdcg", () => {
  it("is 1 when scores order rows by gain, less when reversed, skips groups with no gain", () => {
    const gains = [3, 2, 1, 0, 0, 0];
    const groups = [
      [0, 1, 2],
      [3, 4, 5],
    ];
    expect(meanNdcg([3, 2, 1, 0, 0, 0], gains, groups, 10)).toBeCloseTo(1, 12);
    expect(meanNdcg([1, 2, 3, 0, 0, 0], gains, groups, 10)).toBeLessThan(0.8);
    expect(meanNdcg([0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0], groups, 10)).toBeNaN();
  });

  it("leaves out groups of one row, which have no order to get right", () => {
    const gains = [0, 1, 1, 1, 1];
    // One reversed pair, then three single-row hits that would each count as a perfect 1.
    const groups = [[0, 1], [2], [3], [4]];
    const reversed = 1 / Math.log2(3);
    expect(meanNdcg([1, 0, 5, 5, 5], gains, groups, 10)).toBeCloseTo(reversed, 12);
    expect(groupNdcgs([1, 0, 5, 5, 5], gains, groups, 10)[1]).toBeNaN();
  });
});

describe("maxScaledDiff", () => {
  it("is absolute up to 1 and relative above, where float32 rounding scales with the value", () => {
    expect(maxScaledDiff([0.5, 0.25], [0.5, 0.2501])).toBeCloseTo(1e-4, 12);
    expect(maxScaledDiff([30, 0.5], [30.0003, 0.5])).toBeCloseTo(1e-5, 12);
    expect(maxScaledDiff([-200], [-202])).toBeCloseTo(0.01, 12);
    expect(maxScaledDiff([1], [Number.NaN])).toBeNaN();
  });
});
