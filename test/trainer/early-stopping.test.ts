import { describe, expect, it } from "vitest";
import type { HeadSpec } from "../../trainer/models/types.ts";
import {
  resolveEarlyStop,
  SMALL_VALIDATION_ROWS,
  validationScore,
} from "../../trainer/train/early-stopping.ts";

const heads: HeadSpec[] = [
  { name: "click", type: "binary" },
  { name: "buy", type: "binary" },
  { name: "dwell", type: "regression" },
];
const metrics = {
  click: { auc: 0.7, logloss: 0.4, gauc: 0.6, positiveRate: 0.2, count: 10 },
  buy: { auc: 0.9, logloss: 0.1, positiveRate: 0.05, count: 10 },
  dwell: { mse: 2.5, mae: 1.2, r2: 0.2, count: 10 },
};

describe("validationScore (--early-stop)", () => {
  it("scores so that higher is better for every choice", () => {
    // (0.7 + 0.9 + 0.2) / 3: the regression head's R² counts beside the AUCs.
    expect(validationScore("auc", heads)(metrics)).toBeCloseTo(0.6, 12);
    expect(validationScore("logloss", heads)(metrics)).toBeCloseTo(-0.25, 12);
    expect(validationScore("auc:buy", heads)(metrics)).toBe(0.9);
    expect(validationScore("gauc:click", heads)(metrics)).toBe(0.6);
    expect(validationScore("mse:dwell", heads)(metrics)).toBe(-2.5);
    expect(validationScore("mae:dwell", heads)(metrics)).toBe(-1.2);
    expect(validationScore("r2:dwell", heads)(metrics)).toBe(0.2);
    expect(validationScore("gauc:buy", heads)(metrics)).toBe(Number.NEGATIVE_INFINITY);
  });

  it("gives a regression head a say beside binary ones: a better R² wins when the AUCs tie", () => {
    const score = validationScore("auc", heads);
    const worse = { ...metrics, dwell: { ...metrics.dwell, r2: 0.1 } };
    expect(score(metrics)).toBeGreaterThan(score(worse));
  });

  it("uses the mean R² for auc when no head is binary, and skips heads without a number", () => {
    const regression: HeadSpec[] = [heads[2]!, { name: "spend", type: "regression" }];
    expect(
      validationScore("auc", regression)({ dwell: { r2: 0.3, count: 1 }, spend: { r2: 0.1, count: 1 } }),
    ).toBeCloseTo(0.2, 12);
    expect(validationScore("auc", heads)({ ...metrics, buy: { auc: Number.NaN, count: 1 } })).toBeCloseTo(
      0.45,
      12,
    );
  });

  it("deviance: the mean of 1 − logloss / the positive rate's logloss (binary) and R²", () => {
    const prior = (p: number) => -(p * Math.log(p) + (1 - p) * Math.log(1 - p));
    const expected = (1 - 0.4 / prior(0.2) + (1 - 0.1 / prior(0.05)) + 0.2) / 3;
    expect(validationScore("deviance", heads)(metrics)).toBeCloseTo(expected, 12);
    // A head with one class in validation has no deviance to explain: the others decide.
    const oneClass = { ...metrics, buy: { ...metrics.buy, positiveRate: 0 } };
    expect(validationScore("deviance", heads)(oneClass)).toBeCloseTo((1 - 0.4 / prior(0.2) + 0.2) / 2, 12);
    // Lower logloss on a rare task counts as much as on a common one (a raw mean would not).
    const score = validationScore("deviance", heads);
    const better = (task: "click" | "buy", by: number) => ({
      ...metrics,
      [task]: { ...metrics[task], logloss: metrics[task].logloss - by },
    });
    expect(score(better("buy", 0.01)) - score(metrics)).toBeGreaterThan(
      score(better("click", 0.01)) - score(metrics),
    );
  });

  it("auto: auc on a large validation part, deviance under SMALL_VALIDATION_ROWS rows", () => {
    expect(resolveEarlyStop("auto", SMALL_VALIDATION_ROWS)).toBe("auc");
    expect(resolveEarlyStop("auto", SMALL_VALIDATION_ROWS - 1)).toBe("deviance");
    expect(resolveEarlyStop("logloss", 10)).toBe("logloss");
    expect(validationScore("auto", heads, 500)(metrics)).toBe(validationScore("deviance", heads)(metrics));
    expect(validationScore("auto", heads, 50_000)(metrics)).toBe(validationScore("auc", heads)(metrics));
    // Without a size (the flag checked before any data is read) auto is accepted.
    expect(validationScore("auto", heads)(metrics)).toBeCloseTo(0.6, 12);
  });

  it("names the option in every refusal", () => {
    expect(() => validationScore("recall", heads)).toThrow(
      /--early-stop: expected auto, auc, deviance, logloss or <metric>:<task>/,
    );
    expect(() => validationScore("auc:views", heads)).toThrow(/--early-stop: no task named "views"/);
    expect(() => validationScore("mse:click", heads)).toThrow(
      /mse does not apply to the binary task "click"/,
    );
    expect(() => validationScore("r2:click", heads)).toThrow(/r2 does not apply to the binary task "click"/);
    expect(() => validationScore("auc:dwell", heads)).toThrow(
      /auc does not apply to the regression task "dwell"/,
    );
    expect(() => validationScore("logloss", [heads[2]!])).toThrow(/logloss needs a binary head/);
  });
});
