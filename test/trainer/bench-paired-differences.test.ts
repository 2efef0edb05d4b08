/** bench:quality's paired comparisons (bench/paired-differences.ts): what is paired and the verdict line. */
import { describe, expect, it } from "vitest";
import { LOGISTIC, PairedScores, TUNED_TREES, verdict } from "../../bench/paired-differences.ts";
import { labelledAuc } from "../../trainer/metrics/labelled-rows.ts";
import type { AucDifference } from "../../trainer/metrics/paired-auc.ts";

const y = Float32Array.from({ length: 120 }, (_, i) => (i % 4 === 0 ? 1 : 0));
const scores = (k: number) => Float32Array.from(y, (v, i) => v + Math.cos(i * k));

describe("bench paired differences", () => {
  it("pairs the mean over a network's runs with each baseline present; a misaligned task is left out", () => {
    const p = new PairedScores();
    p.setLabels("s", { click: y, buy: y });
    p.addBaseline("s", LOGISTIC, { click: scores(1), buy: scores(1).subarray(1) });
    p.addNetwork("s", "mmoe", { click: scores(2), buy: scores(2) });
    p.addNetwork("s", "mmoe", { click: scores(3), buy: scores(3) });
    const v = p.versus("s", "mmoe")!;
    expect(Object.keys(v)).toEqual([LOGISTIC]); // no tuned trees added
    expect(Object.keys(v[LOGISTIC]!)).toEqual(["click"]);
    const mean = (labelledAuc(y, scores(2)) + labelledAuc(y, scores(3))) / 2;
    expect(v[LOGISTIC]!.click!.difference).toBeCloseTo(mean - labelledAuc(y, scores(1)), 12);
    expect(p.versus("s", "ple")).toBeUndefined();
  });

  it("the verdict counts cells at or above, under inside their interval, and under outside it", () => {
    const d = (difference: number, low: number, high: number): AucDifference => ({
      difference,
      low,
      high,
      notAbove: 0,
      resamples: 1000,
    });
    expect(
      verdict(TUNED_TREES, [
        d(0.001, -0.002, 0.004),
        d(0, -0.001, 0.001),
        d(-0.001, -0.003, 0.001),
        d(-0.004, -0.006, -0.001),
      ]),
    ).toBe(`against ${TUNED_TREES}: 2 of 4 at or above; 1 under inside the interval; 1 under outside it`);
  });
});
