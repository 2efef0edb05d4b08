/** The publish gate's rules (trainer/pipeline/gate.ts): each with its threshold and measured value. */
import { describe, expect, it } from "vitest";
import type { GateConfig } from "../../trainer/pipeline/config.ts";
import { evaluateGate, GateError, gateSummary, type ModelScores } from "../../trainer/pipeline/gate.ts";
import type { InfraCheckResult } from "../../trainer/pipeline/infra-check.ts";

const gate = (over: Partial<GateConfig>): GateConfig => ({ floors: [], changes: [], infra: false, ...over });

const scores = (click: number, logloss: number, over: Partial<ModelScores> = {}): ModelScores => ({
  holdout: { rows: 1000, tasks: { click: { auc: click, logloss, count: 1000 } }, ranking: { ndcg10: 0.5 } },
  sizes: { modelBytes: 50_000 },
  ...over,
});

const infraOk: InfraCheckResult = { passed: true, detail: "model.onnx: 20 items", graphs: [] };

describe("gate", () => {
  it("refuses to judge with no rule: an empty gate is an error, not a pass", () => {
    expect(() => evaluateGate(gate({}), { candidate: scores(0.7, 0.3) })).toThrow(GateError);
    expect(() => evaluateGate(gate({}), { candidate: scores(0.7, 0.3) })).toThrow(/no rule configured/);
  });

  it("floors: min and max, with the value and the threshold", () => {
    const g = gate({
      floors: [
        { task: "click", metric: "auc", min: 0.6, on: "holdout" },
        { task: "click", metric: "logloss", max: 0.5, on: "holdout" },
      ],
    });
    const pass = evaluateGate(g, { candidate: scores(0.7, 0.3) });
    expect(pass.blessed).toBe(true);
    expect(pass.results.map((r) => [r.value, r.threshold])).toEqual([
      [0.7, 0.6],
      [0.3, 0.5],
    ]);
    const fail = evaluateGate(g, { candidate: scores(0.55, 0.6) });
    expect(fail.blessed).toBe(false);
    expect(fail.results[0]).toMatchObject({ passed: false, value: 0.55, threshold: 0.6 });
    expect(fail.results[0]!.detail).toMatch(/below the floor 0.6/);
    expect(fail.results[1]!.detail).toMatch(/above the ceiling 0.5/);
    expect(gateSummary(fail)).toMatch(/^refused: floor click auc >= 0.6: 0.55 is below the floor/);
  });

  it("a metric that was not measured fails its floor", () => {
    const g = gate({ floors: [{ task: "click", metric: "auc", min: 0.6, on: "holdout" }] });
    const d = evaluateGate(g, { candidate: scores(Number.NaN, 0.3) });
    expect(d.blessed).toBe(false);
    const missing = evaluateGate(
      gate({ floors: [{ task: "buy", metric: "auc", min: 0.6, on: "holdout" }] }),
      {
        candidate: scores(0.7, 0.3),
      },
    );
    expect(missing.results[0]!.detail).toMatch(/not measured/);
    const newest = evaluateGate(
      gate({ floors: [{ task: "click", metric: "auc", min: 0.6, on: "newest" }] }),
      {
        candidate: scores(0.7, 0.3),
      },
    );
    expect(newest.results[0]!.detail).toMatch(/evaluation.newest/);
  });

  it("ndcg10 floors read the ranking", () => {
    const d = evaluateGate(gate({ floors: [{ metric: "ndcg10", min: 0.6, on: "holdout" }] }), {
      candidate: scores(0.7, 0.3),
    });
    expect(d.results[0]).toMatchObject({ rule: "floor ndcg10 >= 0.6", passed: false, value: 0.5 });
  });

  it("changes: difference with direction higher (AUC) and lower (logloss)", () => {
    const g = gate({
      changes: [
        { task: "click", metric: "auc", direction: "higher", maxDrop: 0.01, on: "holdout" },
        { task: "click", metric: "logloss", direction: "lower", maxDrop: 0.005, on: "holdout" },
      ],
    });
    const champion = scores(0.7, 0.3);
    // AUC 0.005 lower (within 0.01), logloss 0.01 higher (over 0.005).
    const d = evaluateGate(g, { candidate: scores(0.695, 0.31), champion });
    expect(d.blessed).toBe(false);
    expect(d.results[0]).toMatchObject({ passed: true, threshold: 0.01 });
    expect(d.results[0]!.value).toBeCloseTo(0.005, 10);
    expect(d.results[1]).toMatchObject({ passed: false, threshold: 0.005 });
    expect(d.results[1]!.value).toBeCloseTo(0.01, 10);
    expect(d.results[1]!.detail).toMatch(/candidate 0.31 vs champion 0.3: drop 0.01\d* > 0.005/);
    // Better on both: negative drops pass.
    expect(evaluateGate(g, { candidate: scores(0.72, 0.29), champion }).blessed).toBe(true);
  });

  it("changes: ratio drop, and a negative bound demands an improvement", () => {
    const ratio = gate({
      changes: [{ task: "click", metric: "auc", direction: "higher", maxRatioDrop: 0.01, on: "holdout" }],
    });
    const champion = scores(0.8, 0.3);
    const ok = evaluateGate(ratio, { candidate: scores(0.795, 0.3), champion });
    expect(ok.results[0]!.value).toBeCloseTo(0.00625, 10);
    expect(ok.blessed).toBe(true);
    expect(evaluateGate(ratio, { candidate: scores(0.79, 0.3), champion }).blessed).toBe(false);
    const improve = gate({
      changes: [{ task: "click", metric: "auc", direction: "higher", maxDrop: -0.01, on: "holdout" }],
    });
    expect(evaluateGate(improve, { candidate: scores(0.805, 0.3), champion }).blessed).toBe(false);
    expect(evaluateGate(improve, { candidate: scores(0.811, 0.3), champion }).blessed).toBe(true);
  });

  it("a rule with both bounds gives one result per bound", () => {
    const g = gate({
      changes: [
        {
          task: "click",
          metric: "auc",
          direction: "higher",
          maxDrop: 0.1,
          maxRatioDrop: 0.001,
          on: "holdout",
        },
      ],
    });
    const d = evaluateGate(g, { candidate: scores(0.79, 0.3), champion: scores(0.8, 0.3) });
    expect(d.results.map((r) => r.passed)).toEqual([true, false]);
  });

  it("first run: no champion, floors alone decide; changes are recorded as skipped", () => {
    const g = gate({
      floors: [{ task: "click", metric: "auc", min: 0.6, on: "holdout" }],
      changes: [{ task: "click", metric: "auc", direction: "higher", maxDrop: 0, on: "holdout" }],
    });
    const d = evaluateGate(g, { candidate: scores(0.65, 0.3) });
    expect(d.blessed).toBe(true);
    expect(d.results[1]!.detail).toMatch(/skipped: no champion/);
    // Changes only and no champion: nothing can judge a first model, so it is not blessed.
    const only = evaluateGate(gate({ changes: g.changes }), { candidate: scores(0.65, 0.3) });
    expect(only.blessed).toBe(false);
    expect(gateSummary(only)).toMatch(/first model/);
  });

  it("a change rule the holdout cannot measure fails; only a head the champion lacks is skipped", () => {
    const rule = { task: "click", metric: "auc", direction: "higher", maxDrop: 0.01, on: "holdout" } as const;
    const g = gate({ changes: [rule] });
    // One class only in the holdout: AUC is undefined for both models, so nothing was judged.
    const both = evaluateGate(g, { candidate: scores(Number.NaN, 0.3), champion: scores(Number.NaN, 0.3) });
    expect(both.blessed).toBe(false);
    expect(both.results[0]!.detail).toBe("candidate: value is NaN");
    // The candidate measured, the champion not (its own head on the same rows): not judged either.
    const champion = evaluateGate(g, { candidate: scores(0.7, 0.3), champion: scores(Number.NaN, 0.3) });
    expect(champion.blessed).toBe(false);
    expect(champion.results[0]!.detail).toBe(
      "the champion's click auc is NaN on this data, so the change cannot be judged",
    );
    // A head the new spec added: the champion has no such task at all, and sets no bar.
    const added = evaluateGate(g, {
      candidate: scores(0.7, 0.3),
      champion: scores(0.7, 0.3, { holdout: { rows: 1000, tasks: {}, ranking: { ndcg10: 0.5 } } }),
    });
    expect(added.blessed).toBe(true);
    expect(added.results[0]!.detail).toBe("skipped: the champion has no click auc (a head it does not have)");
  });

  it("int8 parity: float32 AUC − int8 AUC on the holdout per binary task", () => {
    const g = gate({
      floors: [{ task: "click", metric: "auc", min: 0.5, on: "holdout" }],
      int8: { maxAucDrop: 0.002 },
    });
    const int8 = (auc: number) => ({ rows: 1000, tasks: { click: { auc, count: 1000 } } });
    const ok = evaluateGate(g, { candidate: scores(0.7, 0.3, { int8Holdout: int8(0.699) }) });
    expect(ok.blessed).toBe(true);
    expect(ok.results[1]).toMatchObject({ threshold: 0.002 });
    expect(ok.results[1]!.value).toBeCloseTo(0.001, 10);
    const bad = evaluateGate(g, { candidate: scores(0.7, 0.3, { int8Holdout: int8(0.69) }) });
    expect(bad.blessed).toBe(false);
    const none = evaluateGate(g, { candidate: scores(0.7, 0.3) });
    expect(none.results[1]!.detail).toMatch(/no int8 graph/);
  });

  it("size budgets: model.onnx, model.int8.onnx and manifest.json bytes", () => {
    const g = gate({
      floors: [{ task: "click", metric: "auc", min: 0.5, on: "holdout" }],
      size: { modelBytes: 40_000, int8Bytes: 20_000, manifestBytes: 2_000_000 },
    });
    const d = evaluateGate(g, {
      candidate: scores(0.7, 0.3, {
        sizes: { modelBytes: 50_000, int8Bytes: 15_000, manifestBytes: 7_799_321 },
      }),
    });
    expect(d.results.slice(1)).toMatchObject([
      { rule: "size model.onnx <= 40000 bytes", passed: false, value: 50_000, threshold: 40_000 },
      { rule: "size model.int8.onnx <= 20000 bytes", passed: true, value: 15_000, threshold: 20_000 },
      { rule: "size manifest.json <= 2000000 bytes", passed: false, value: 7_799_321, threshold: 2_000_000 },
    ]);
    const noInt8 = evaluateGate(g, { candidate: scores(0.7, 0.3, { sizes: { modelBytes: 1 } }) });
    expect(noInt8.results[2]!.detail).toMatch(/not exported/);
  });

  it("infra: required when on; its result decides", () => {
    const g = gate({ floors: [{ task: "click", metric: "auc", min: 0.5, on: "holdout" }], infra: true });
    expect(evaluateGate(g, { candidate: scores(0.7, 0.3) }).blessed).toBe(false);
    expect(evaluateGate(g, { candidate: scores(0.7, 0.3), infra: infraOk }).blessed).toBe(true);
    const broken = evaluateGate(g, {
      candidate: scores(0.7, 0.3),
      infra: { passed: false, detail: "model.int8.onnx: Error: no input", graphs: [] },
    });
    expect(broken.blessed).toBe(false);
    expect(broken.results[1]!.detail).toMatch(/no input/);
  });

  it("a champion that could not be evaluated fails the change rules instead of skipping them", () => {
    const g = gate({
      floors: [{ task: "click", metric: "auc", min: 0.5, on: "holdout" }],
      changes: [{ task: "click", metric: "auc", direction: "higher", maxDrop: 0.01, on: "holdout" }],
    });
    const d = evaluateGate(g, { candidate: scores(0.7, 0.3), championError: "no column age" });
    expect(d.blessed).toBe(false);
    expect(d.results[1]!.detail).toBe("the champion could not be evaluated: no column age");
  });
});
