/** compareScored (trainer/evaluate/compare-models.ts): which tasks it compares, and what it refuses. */
import { describe, expect, it } from "vitest";
import { compareScored } from "../../trainer/evaluate/compare-models.ts";
import type { EvaluationReport, ScoredEvaluation } from "../../trainer/evaluate/evaluate-model.ts";
import { labelledAuc } from "../../trainer/metrics/labelled-rows.ts";

const labels = Float32Array.from({ length: 200 }, (_, i) => (i % 3 === 0 ? 1 : 0));
const noisy = (seed: number) => Float32Array.from(labels, (y, i) => y + Math.sin(i * seed) * 0.9);

/** A scored evaluation of the heads given (a "visits" regression head has no AUC). */
function scored(id: string, heads: Record<string, Float32Array>): ScoredEvaluation {
  const tasks: EvaluationReport["tasks"] = {};
  for (const [head, scores] of Object.entries(heads))
    tasks[head] =
      head === "visits" ? { mse: 1, count: 200 } : { auc: labelledAuc(labels, scores), count: 200 };
  const report = { model: { id, version: "v1", file: "model.onnx" }, rows: 200, tasks } as EvaluationReport;
  return { report, scores: heads, labels: { click: labels, buy: labels, visits: labels } };
}

describe("compareScored", () => {
  it("compares the binary heads both models have; names the ones the other lacks", () => {
    const c = compareScored(
      scored("new", { click: noisy(1), buy: noisy(2), visits: noisy(3) }),
      scored("old", { click: noisy(4) }),
    );
    expect(Object.keys(c.tasks)).toEqual(["click"]);
    expect(c.skipped).toEqual([{ task: "buy", why: "the other model has no such binary head" }]);
    const t = c.tasks.click!;
    expect(t.difference).toBeCloseTo(labelledAuc(labels, noisy(1)) - labelledAuc(labels, noisy(4)), 12);
    expect(t.low).toBeLessThan(t.high);
    expect(c.against).toEqual({ id: "old", version: "v1", file: "model.onnx" });
  });

  it("refuses two evaluations of different files", () => {
    const other = scored("old", { click: noisy(4) });
    other.report.rows = 199;
    expect(() => compareScored(scored("new", { click: noisy(1) }), other)).toThrow(/scored 200 and 199 rows/);
  });
});
