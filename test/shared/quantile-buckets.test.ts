import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { bucketIndex } from "../../shared/encoder/encode.ts";
import { quantileBoundaries } from "../../shared/encoder/fit.ts";

/** Rows per bucket when `values` are cut at `boundaries`. */
function fill(values: readonly number[], boundaries: readonly number[]): number[] {
  const counts = new Array<number>(boundaries.length + 1).fill(0);
  for (const v of values) counts[bucketIndex(boundaries, v)]!++;
  return counts;
}

describe("quantile buckets of values with point masses", () => {
  it("gives a zero-inflated feature its buckets over the non-zero values", () => {
    // 96% zeros, as capital gains in census data: plain quantile cuts were all 0 (no buckets).
    const values = [...new Array<number>(9600).fill(0), ...Array.from({ length: 400 }, (_, i) => 100 + i)];
    const boundaries = quantileBoundaries(values, 16);
    expect(boundaries).toHaveLength(15);
    expect(boundaries[0]).toBe(100);
    const counts = fill(values, boundaries);
    expect(counts[0]).toBe(9600);
    // The 400 non-zero values share the other 15 buckets evenly (26 or 27 each).
    for (const c of counts.slice(1)) expect(Math.abs(c - 400 / 15)).toBeLessThan(1.5);
  });

  it("gives a mass in the middle and one at the top buckets of their own", () => {
    // Weeks worked: 0 for 40%, 52 for 35%, the rest spread over 1..51.
    const spread = Array.from({ length: 2500 }, (_, i) => 1 + (i % 51));
    const values = [...new Array<number>(4000).fill(0), ...spread, ...new Array<number>(3500).fill(52)];
    const boundaries = quantileBoundaries(values, 16);
    expect(boundaries[0]).toBe(1);
    expect(boundaries[boundaries.length - 1]).toBe(52);
    const counts = fill(values, boundaries);
    expect(counts[0]).toBe(4000);
    expect(counts[counts.length - 1]).toBe(3500);
    expect(counts.length).toBeGreaterThanOrEqual(8);
  });

  it("cuts continuous values every n / buckets values, as plain quantiles", () => {
    const values = Array.from({ length: 1000 }, (_, i) => i * 0.5);
    expect(quantileBoundaries(values, 4)).toEqual([125, 250, 375]);
    expect(quantileBoundaries(values, 1)).toEqual([]);
    expect(quantileBoundaries([3, 3, 3], 16)).toEqual([]);
  });

  it("returns increasing training values, at most buckets - 1, and leaves no bucket empty", () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.constantFrom(0, 1, 52), fc.integer({ min: -50, max: 200 })), {
          minLength: 1,
          maxLength: 400,
        }),
        fc.integer({ min: 2, max: 20 }),
        (values, buckets) => {
          const boundaries = quantileBoundaries(values, buckets);
          expect(boundaries.length).toBeLessThanOrEqual(buckets - 1);
          for (let i = 1; i < boundaries.length; i++)
            expect(boundaries[i]).toBeGreaterThan(boundaries[i - 1]!);
          for (const b of boundaries) expect(values).toContain(b);
          for (const c of fill(values, boundaries)) expect(c).toBeGreaterThan(0);
        },
      ),
      { numRuns: 300, seed: 7 },
    );
  });

  it("keeps a value that fills half the rows alone in its bucket, wherever it lies", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: -50, max: 200 }), { minLength: 1, maxLength: 200 }),
        fc.integer({ min: -50, max: 200 }),
        fc.integer({ min: 0, max: 200 }),
        fc.integer({ min: 4, max: 20 }),
        (others, mass, extra, buckets) => {
          const rest = others.filter((v) => v !== mass);
          const values = [...rest, ...new Array<number>(rest.length + extra + 1).fill(mass)];
          const boundaries = quantileBoundaries(values, buckets);
          const k = bucketIndex(boundaries, mass);
          expect(rest.filter((x) => bucketIndex(boundaries, x) === k)).toEqual([]);
        },
      ),
      { numRuns: 300, seed: 7 },
    );
  });
});
