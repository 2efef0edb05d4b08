import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { learningRateSchedule } from "../../trainer/train/schedule.ts";

describe("learningRateSchedule", () => {
  it("cosine: warms up from 10% to the peak, then decays monotonically to 5% at the last step", () => {
    const lr = learningRateSchedule({ kind: "cosine", peak: 0.01, totalSteps: 1000, warmupSteps: 100 });
    expect(lr(0)).toBeCloseTo(0.001, 10);
    expect(lr(50)).toBeCloseTo(0.0055, 10);
    expect(lr(100)).toBeCloseTo(0.01, 10);
    expect(lr(1000)).toBeCloseTo(0.0005, 10);
    expect(lr(5000)).toBeCloseTo(0.0005, 10); // early-stopping plans never run past the end, but stay sane
    for (let s = 101; s <= 1000; s++) expect(lr(s)).toBeLessThanOrEqual(lr(s - 1));
  });

  it("cosine: stays within [5%, 100%] of the peak for any plan and step", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 100_000 }), fc.nat(200_000), (total, step) => {
        const lr = learningRateSchedule({ kind: "cosine", peak: 0.002, totalSteps: total });
        const x = lr(step);
        return Number.isFinite(x) && x >= 0.002 * 0.05 - 1e-12 && x <= 0.002 + 1e-12;
      }),
    );
  });

  it("constant keeps the peak; a non-positive rate is refused", () => {
    expect(learningRateSchedule({ kind: "constant", peak: 0.3, totalSteps: 10 })(7)).toBe(0.3);
    expect(() => learningRateSchedule({ kind: "cosine", peak: 0, totalSteps: 10 })).toThrow(/learning rate/);
  });
});
