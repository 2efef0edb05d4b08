import { describe, expect, it } from "vitest";
import { headlineMetrics } from "../../trainer/cli/format.ts";

describe("headlineMetrics", () => {
  it("shows AUC for binary heads, MSE for regression heads, and - for an undefined AUC", () => {
    expect(
      headlineMetrics({
        click: { auc: 0.61234, logloss: 0.3, count: 10 },
        rare: { auc: Number.NaN, logloss: 0.01, count: 10 },
        dwell: { mse: 1.5, mae: 1, count: 10 },
      }),
    ).toBe("click auc 0.6123  rare auc -  dwell mse 1.5000");
  });
});
