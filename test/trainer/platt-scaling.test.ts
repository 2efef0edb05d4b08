/** Platt scaling of binary heads: the fit, its guards, and calibration after training. */
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { selectBackend } from "../../trainer/train/backend.ts";
import { fitPlatt, IDENTITY, logitsOf } from "../../trainer/train/platt-scaling.ts";
import { runTraining } from "../../trainer/workflows/train-and-report.ts";
import { lcg } from "./lcg.ts";

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

function sample(n: number, scale: number, shift: number, seed: number) {
  const rand = lcg(seed);
  const logits = Float64Array.from({ length: n }, () => (rand() - 0.5) * 8);
  const labels = Float32Array.from(logits, (z) => (rand() < sigmoid(scale * z + shift) ? 1 : 0));
  return { logits, labels };
}

function logLoss(labels: ArrayLike<number>, logits: ArrayLike<number>, a: number, b: number): number {
  let sum = 0;
  for (let i = 0; i < labels.length; i++) {
    const p = Math.min(1 - 1e-12, Math.max(1e-12, sigmoid(a * logits[i]! + b)));
    sum -= labels[i]! > 0.5 ? Math.log(p) : Math.log(1 - p);
  }
  return sum;
}

describe("fitPlatt", () => {
  it("recovers the scale and shift that generated the labels", () => {
    const { logits, labels } = sample(40_000, 0.5, -1, 11);
    const fit = fitPlatt(labels, logits);
    expect(fit.scale).toBeCloseTo(0.5, 1);
    expect(fit.shift).toBeCloseTo(-1, 1);
  });

  it("keeps the identity for one-class labels and for a fit that would reverse the order", () => {
    const { logits } = sample(500, 1, 0, 3);
    expect(fitPlatt(new Float32Array(500), logits)).toEqual(IDENTITY);
    expect(fitPlatt(new Float32Array(500).fill(1), logits)).toEqual(IDENTITY);
    const reversed = sample(5000, -1, 0, 5);
    expect(fitPlatt(reversed.labels, reversed.logits)).toEqual(IDENTITY);
  });

  it("never has a higher log loss than the identity (property)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 20, max: 400 }),
        fc.double({ min: 0.05, max: 4, noNaN: true }),
        fc.double({ min: -4, max: 4, noNaN: true }),
        fc.integer({ min: 1, max: 1_000_000 }),
        (n, scale, shift, seed) => {
          const { logits, labels } = sample(n, scale, shift, seed);
          const fit = fitPlatt(labels, logits);
          expect(fit.scale).toBeGreaterThan(0);
          expect(logLoss(labels, logits, fit.scale, fit.shift)).toBeLessThanOrEqual(
            logLoss(labels, logits, 1, 0) + 1e-6 * n,
          );
        },
      ),
      { numRuns: 200 },
    );
  });

  it("logitsOf inverts the sigmoid and stays finite at 0 and 1", () => {
    const z = logitsOf(Float32Array.from([0, 0.25, 0.5, 0.9, 1]));
    expect(Array.from(z).every(Number.isFinite)).toBe(true);
    expect(z[2]).toBeCloseTo(0, 6);
    expect(sigmoid(z[3]!)).toBeCloseTo(0.9, 6);
  });
});

describe("calibration after training", () => {
  beforeAll(async () => {
    await selectBackend();
  });

  it("fits each binary head on validation: ECE does not rise, AUC is unchanged, `none` leaves the heads alone", async () => {
    const base = {
      data: "fixtures/real-logs/ali_ccp_sample.csv",
      spec: "fixtures/specs/ali_ccp.json",
      arch: "esmm",
      epochs: 2,
      seed: 5,
    };
    const platt = await runTraining(base);
    const none = await runTraining({ ...base, calibration: "none" });
    expect(none.calibration).toBeUndefined();
    expect(Object.keys(platt.calibration ?? {}).sort()).toEqual(Object.keys(platt.validation).sort());
    for (const [task, c] of Object.entries(platt.calibration!)) {
      expect(c.scale, task).toBeGreaterThan(0);
      expect(c.eceAfter, task).toBeLessThanOrEqual(c.eceBefore + 1e-9);
      expect(c.eceBefore, task).toBeCloseTo(none.validation[task]!.ece!, 9);
      // (NaN on both sides when the fixture's validation rows hold one class.)
      const [a, b] = [platt.validation[task]!.auc!, none.validation[task]!.auc!];
      if (Number.isNaN(b)) expect(a, task).toBeNaN();
      else expect(a, task).toBeCloseTo(b, 6);
    }
  });
});
