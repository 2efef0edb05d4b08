import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { auc } from "../../trainer/core/metrics.ts";
import { createRng } from "../../trainer/core/rng.ts";
import { pairedAucDifference, pairedMeanDifference, weightedAuc } from "../../trainer/metrics/paired-auc.ts";

/** Labels with both classes and scores from few values (so ties happen), with integer weights. */
const weighted = fc
  .integer({ min: 2, max: 40 })
  .chain((n) =>
    fc.tuple(
      fc.array(fc.constantFrom(0, 1), { minLength: n, maxLength: n }),
      fc.array(fc.integer({ min: 0, max: 4 }), { minLength: n, maxLength: n }),
      fc.array(fc.integer({ min: 0, max: 3 }), { minLength: n, maxLength: n }),
    ),
  )
  .filter(([y]) => y.includes(0) && y.includes(1));

/** DeLong's variance of AUC(a) − AUC(b) on the same rows (brute force over every pair). */
function delongVariance(y: number[], a: number[], b: number[]): number {
  const pos = y.flatMap((l, i) => (l === 1 ? [i] : []));
  const neg = y.flatMap((l, i) => (l === 0 ? [i] : []));
  const psi = (s: number[], i: number, j: number) => (s[i]! > s[j]! ? 1 : s[i] === s[j] ? 0.5 : 0);
  const v10 = pos.map((i) => neg.reduce((t, j) => t + psi(a, i, j) - psi(b, i, j), 0) / neg.length);
  const v01 = neg.map((j) => pos.reduce((t, i) => t + psi(a, i, j) - psi(b, i, j), 0) / pos.length);
  const variance = (v: number[]) => {
    const m = v.reduce((t, x) => t + x, 0) / v.length;
    return v.reduce((t, x) => t + (x - m) ** 2, 0) / (v.length - 1);
  };
  return variance(v10) / pos.length + variance(v01) / neg.length;
}

/** n rows with a 30 % positive rate and two models' scores: label·strength + noise, sharing part of the noise. */
function twoModels(n: number, strengthA: number, strengthB: number, seed: number) {
  const rng = createRng(seed);
  const y: number[] = [];
  const a: number[] = [];
  const b: number[] = [];
  for (let i = 0; i < n; i++) {
    const label = rng.uniform() < 0.3 ? 1 : 0;
    const shared = rng.normal();
    y.push(label);
    a.push(label * strengthA + shared + 0.7 * rng.normal());
    b.push(label * strengthB + shared + 0.7 * rng.normal());
  }
  return { y, a, b };
}

describe("weightedAuc", () => {
  it("is the plain AUC with every weight 1, ties included", () => {
    fc.assert(
      fc.property(weighted, ([y, s]) => {
        expect(
          weightedAuc(
            y,
            s,
            y.map(() => 1),
          ),
        ).toBeCloseTo(auc(y, s), 12);
      }),
    );
  });

  it("is the AUC of the rows repeated as many times as they weigh", () => {
    fc.assert(
      fc.property(weighted, ([y, s, w]) => {
        const ry = y.flatMap((l, i) => Array<number>(w[i]!).fill(l));
        const rs = s.flatMap((v, i) => Array<number>(w[i]!).fill(v));
        const got = weightedAuc(y, s, w);
        if (ry.includes(0) && ry.includes(1)) expect(got).toBeCloseTo(auc(ry, rs), 12);
        else expect(got).toBeNaN();
      }),
    );
  });

  it("leaves out rows whose label is neither 0 nor 1", () => {
    const y = [1, 0, Number.NaN, 1, 0, 0.5];
    const s = [0.9, 0.1, 0.95, 0.2, 0.3, 0];
    expect(weightedAuc(y, s, [1, 1, 1, 1, 1, 1])).toBeCloseTo(auc([1, 0, 1, 0], [0.9, 0.1, 0.2, 0.3]), 12);
  });
});

describe("pairedAucDifference", () => {
  it("gives 0 and a zero-width interval for the same scores", () => {
    const { y, a } = twoModels(500, 1, 1, 1);
    const d = pairedAucDifference(y, [a], [a], { resamples: 200 });
    expect([d.difference, d.low, d.high]).toEqual([0, 0, 0]);
    expect(d.notAbove).toBe(1);
  });

  it("puts a clearly better model's interval above 0, and a worse one's below", () => {
    const { y, a, b } = twoModels(3000, 1.2, 0.6, 2);
    const better = pairedAucDifference(y, [a], [b], { resamples: 300 });
    expect(better.difference).toBeCloseTo(auc(y, a) - auc(y, b), 12);
    expect(better.low).toBeGreaterThan(0);
    expect(better.notAbove).toBe(0);
    const worse = pairedAucDifference(y, [b], [a], { resamples: 300 });
    expect(worse.high).toBeLessThan(0);
    expect(worse.notAbove).toBe(1);
  });

  it("has the width DeLong's variance gives (within 20 %)", () => {
    const { y, a, b } = twoModels(600, 0.8, 0.7, 3);
    const d = pairedAucDifference(y, [a], [b], { resamples: 2000, seed: 5 });
    const se = Math.sqrt(delongVariance(y, a, b));
    expect((d.high - d.low) / (2 * 1.96)).toBeGreaterThan(0.8 * se);
    expect((d.high - d.low) / (2 * 1.96)).toBeLessThan(1.2 * se);
    // The interval sits around the difference measured on the file as it is.
    expect(d.low).toBeLessThan(d.difference);
    expect(d.high).toBeGreaterThan(d.difference);
  });

  it("compares mean AUCs over several seeds' scores on each side, and the same seed gives the same interval", () => {
    const one = twoModels(800, 1, 0.8, 4);
    const two = twoModels(800, 1, 0.8, 4);
    // Second seeds' scores: the first's plus noise of their own.
    const noise = twoModels(800, 0, 0, 9).a;
    const a2 = one.a.map((v, i) => v + 0.3 * noise[i]!);
    const b2 = one.b.map((v, i) => v - 0.2 * noise[i]!);
    const d = pairedAucDifference(one.y, [one.a, a2], [one.b, b2], { resamples: 100, seed: 7 });
    const mean = (x: number, z: number) => (x + z) / 2;
    expect(d.difference).toBeCloseTo(
      mean(auc(one.y, one.a), auc(one.y, a2)) - mean(auc(one.y, one.b), auc(one.y, b2)),
      12,
    );
    expect(pairedAucDifference(two.y, [two.a, a2], [two.b, b2], { resamples: 100, seed: 7 })).toEqual(d);
  });

  it("refuses scores that do not line up with the labels, and NaN scores", () => {
    const misaligned = /2 scores for 3 labels/;
    expect(() => pairedAucDifference([1, 0, 1], [[0.1, 0.2]], [[0.1, 0.2, 0.3]])).toThrow(misaligned);
    expect(() => pairedAucDifference([1, 0, 1], [[0.1, 0.2, 0.3]], [[0.1, 0.2]])).toThrow(misaligned);
    expect(() => pairedAucDifference([1, 0], [[0.1, Number.NaN]], [[0.1, 0.2]])).toThrow(/NaN/);
    expect(() => pairedAucDifference([1, 0], [], [[0.1, 0.2]])).toThrow(/no scores/);
    expect(() => pairedAucDifference([1, 0], [[0.1, 0.2]], [])).toThrow(/no scores/);
  });

  it("mean differences: the mean of the rows' differences; a shift moves the interval by as much (property)", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(fc.double({ min: -5, max: 5, noNaN: true }), fc.double({ min: -5, max: 5, noNaN: true })),
          {
            minLength: 1,
            maxLength: 60,
          },
        ),
        fc.double({ min: -3, max: 3, noNaN: true }),
        (pairs, shift) => {
          const a = pairs.map(([x]) => x);
          const b = pairs.map(([, y]) => y);
          const d = pairedMeanDifference(a, b, { resamples: 200 });
          const mean = pairs.reduce((s, [x, y]) => s + x - y, 0) / pairs.length;
          expect(d.difference).toBeCloseTo(mean, 9);
          expect(d.low).toBeLessThanOrEqual(d.high);
          const moved = pairedMeanDifference(
            a.map((x) => x + shift),
            b,
            { resamples: 200 },
          );
          expect(moved.low).toBeCloseTo(d.low + shift, 9);
          expect(moved.high).toBeCloseTo(d.high + shift, 9);
        },
      ),
      { numRuns: 100 },
    );
    const same = pairedMeanDifference([1, 2, 3], [1, 2, 3]);
    expect([same.difference, same.low, same.high, same.notAbove]).toEqual([0, 0, 0, 1]);
    expect(() => pairedMeanDifference([1], [1, 2])).toThrow(/both must cover the same rows/);
  });
});
