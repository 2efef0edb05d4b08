import { describe, expect, it } from "vitest";
import { auc, meanNdcg } from "../../trainer/train/metrics.ts";

describe("auc", () => {
  it("is 1 for a perfect ranking, 0 for a reversed one, 0.5 for ties", () => {
    expect(auc([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9])).toBe(1);
    expect(auc([1, 1, 0, 0], [0.1, 0.2, 0.8, 0.9])).toBe(0);
    expect(auc([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5])).toBe(0.5);
    expect(auc([1, 1], [0.1, 0.2])).toBeNaN();
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
});
