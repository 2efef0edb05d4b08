import { describe, expect, it } from "vitest";
import { headlineMetrics, metricsTable } from "../../trainer/cli/format.ts";

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

describe("metricsTable", () => {
  it("adds an r² column when a regression head has one, and leaves it out otherwise", () => {
    const click = { auc: 0.7, logloss: 0.3, positiveRate: 0.1, count: 10 };
    const table = metricsTable({ click, dwell: { mse: 0.5, r2: 0.25, count: 4 } }).split("\n");
    expect(table[0]!.trim().split(/\s+/)).toEqual([
      "task",
      "auc",
      "logloss",
      "mse",
      "r²",
      "positive",
      "rows",
    ]);
    expect(table[2]!.trim().split(/\s+/)).toEqual(["dwell", "-", "-", "0.5000", "0.2500", "-", "4"]);
    expect(metricsTable({ click }).split("\n")[0]).not.toContain("r²");
  });
});
