/**
 * The publish gate, after TFX's Evaluator and MLflow's validation thresholds: a candidate is
 * blessed only when every configured rule passes. Rules are absolute floors on its own metrics,
 * bounds on its change against the champion on the same data, int8 parity, size budgets and the
 * infra check. Every result carries its threshold and the measured value, for the run record.
 *
 * A first model (no champion) is judged by its floors alone: change rules are recorded as
 * skipped. A gate with no quality rule is an error, never a silent pass.
 *
 * A change rule with `confidence` (AUC, logloss, MSE, MAE, R², ECE, NDCG@10) holds the drop's upper
 * confidence bound to its bound, from a paired bootstrap over the rows (for NDCG, the groups) both
 * models scored: on a small holdout a worse candidate can measure level with the champion by
 * chance, and the bound is what says the data is too thin to tell (docs/pipeline.md "Gate rules").
 */
import type { TaskMetrics } from "../../shared/manifest.ts";
import { rowLogloss } from "../core/metrics.ts";
import { weightedCalibrationError } from "../metrics/calibration.ts";
import {
  keptRows,
  pairedAucDifference,
  pairedMeanDifference,
  pairedWeightedDifference,
} from "../metrics/paired-auc.ts";
import { weightedExplainedVariance } from "../metrics/task-metrics.ts";
import type { ChangeRule, FloorRule, GateConfig, GateMetric } from "./config.ts";
import type { GateDecision, GateResult, ModelSizes } from "./contracts.ts";
import type { InfraCheckResult } from "./infra-check.ts";

/** A gate that cannot judge: no rule configured. */
export class GateError extends Error {
  override name = "GateError";
}

/** One model's metrics on one data set (evaluate's report, reduced to what rules read). */
export interface ModelEvaluation {
  rows: number;
  tasks: Record<string, TaskMetrics>;
  /** NDCG@10 of the fused score within the spec's groups, when the spec has a group. */
  ranking?: { ndcg10: number };
  /** Binary heads' reliability curve (equal-mass bins), for the record's page; gate rules ignore it. */
  reliability?: Record<string, { meanPredicted: number; observedRate: number }[]>;
}

/** What the gate reads of one model. */
export interface ModelScores {
  /** The frozen holdout, float32 graph. */
  holdout: ModelEvaluation;
  /** The same holdout through model.int8.onnx, when the model has one. */
  int8Holdout?: ModelEvaluation;
  /** The newest slice of the new data, when the config asks for it. */
  newest?: ModelEvaluation;
  /** Bytes of model.onnx, model.int8.onnx and manifest.json. */
  sizes: ModelSizes;
  /**
   * Per head, the float32 graph's score of every row of the holdout and of the newest slice, in
   * the data's order: what change rules with `confidence` resample. Kept out of the run record.
   */
  rowScores?: Partial<Record<"holdout" | "newest", RowValues>>;
  /** With a spec group: each group's NDCG@10, in the data's first-seen order (NaN: no gains). */
  groupNdcg10?: Partial<Record<"holdout" | "newest", ArrayLike<number>>>;
}

/** Per task (or head), one value per row of a data set, in the data's order; NaN: none. */
export type RowValues = Record<string, ArrayLike<number>>;

export interface GateInput {
  candidate: ModelScores;
  /** Absent on the first run: nothing is published yet. */
  champion?: ModelScores;
  /**
   * A champion exists but could not be scored (its files, or the holdout against its features):
   * change rules then fail rather than pass unjudged; --force-publish overrides with a reason.
   */
  championError?: string;
  /** The infra check's result (infra-check.ts); required when the gate's `infra` is on. */
  infra?: InfraCheckResult;
  /** The labels of the rows both models scored, per evaluation: change rules with `confidence` read them. */
  labels?: Partial<Record<"holdout" | "newest", RowValues>>;
}

/** Bootstrap resamples behind a change rule's confidence bound; seed 0, so a run's verdict repeats. */
export const GATE_RESAMPLES = 1000;

/** Runs every configured rule; throws GateError when the gate has no quality rule at all. */
export function evaluateGate(gate: GateConfig, input: GateInput): GateDecision {
  if (gate.floors.length + gate.changes.length === 0)
    throw new GateError(
      'gate: no rule configured: name at least one "floors" or "changes" rule (an empty gate would bless any model)',
    );
  const results: GateResult[] = [
    ...gate.floors.map((rule) => floorResult(rule, input.candidate)),
    ...gate.changes.flatMap((rule) => changeResults(rule, input)),
  ];
  if (!input.champion && !input.championError && gate.floors.length === 0)
    results.push({
      rule: "first model",
      passed: false,
      detail:
        'no champion to compare with and no "floors" rule: a first model is judged by floors alone, so add one',
    });
  if (gate.int8) results.push(...int8Results(gate.int8, input.candidate));
  if (gate.size) results.push(...sizeResults(gate.size, input.candidate));
  if (gate.infra) results.push(infraResult(input.infra));
  return { blessed: results.every((r) => r.passed), results };
}

/** The rules' outcome in one line: what failed, or that all passed. */
export function gateSummary(decision: GateDecision): string {
  return decision.blessed
    ? `blessed: ${decision.results.length} rules passed`
    : `refused: ${failedRules(decision)}`;
}

/** The failed rules with their details, "; "-separated. */
export function failedRules(decision: GateDecision): string {
  return decision.results
    .filter((r) => !r.passed)
    .map((r) => `${r.rule}: ${r.detail}`)
    .join("; ");
}

/** "click auc" or "ndcg10", with "(newest)" when the rule reads the newest slice. */
function subject(rule: { task?: string | undefined; metric: GateMetric; on: "holdout" | "newest" }): string {
  const what = rule.task === undefined ? rule.metric : `${rule.task} ${rule.metric}`;
  return rule.on === "newest" ? `${what} (newest slice)` : what;
}

type MetricRule = { task?: string | undefined; metric: GateMetric; on: "holdout" | "newest" };

/**
 * What holds the rule's metric in the scores: its task's metrics, or the ranking's for NDCG;
 * undefined where the scores have no such head (or no such evaluation) at all.
 */
function metricsFor(scores: ModelScores, rule: MetricRule): object | undefined {
  const evaluation = rule.on === "newest" ? scores.newest : scores.holdout;
  return rule.metric === "ndcg10" ? evaluation?.ranking : evaluation?.tasks[rule.task!];
}

function metricValue(scores: ModelScores, rule: MetricRule): number | undefined {
  const metrics = metricsFor(scores, rule) as Readonly<Record<string, number | undefined>> | undefined;
  return metrics?.[rule.metric];
}

/** Whether the scores have the rule's head (or a ranking, for NDCG) at all, whatever its value. */
function measures(scores: ModelScores, rule: MetricRule): boolean {
  return metricsFor(scores, rule) !== undefined;
}

function notMeasured(rule: { on: "holdout" | "newest" }, scores: ModelScores): string {
  if (rule.on === "newest" && !scores.newest)
    return 'not measured: the config has no "evaluation.newest" slice';
  return "not measured (the metric is undefined on this data: one class only, or no such head)";
}

/** Four significant digits without trailing zeros: 0.3, 0.6931, 0.01. */
const num = (x: number) =>
  Number.isInteger(x) || !Number.isFinite(x) ? String(x) : String(Number(x.toPrecision(4)));

function floorResult(rule: FloorRule, candidate: ModelScores): GateResult {
  const bounds = [
    ...(rule.min !== undefined ? [`>= ${num(rule.min)}`] : []),
    ...(rule.max !== undefined ? [`<= ${num(rule.max)}`] : []),
  ].join(" and ");
  const name = `floor ${subject(rule)} ${bounds}`;
  const threshold = rule.min ?? rule.max;
  const value = metricValue(candidate, rule);
  if (value === undefined || !Number.isFinite(value))
    return {
      rule: name,
      passed: false,
      detail: value === undefined ? notMeasured(rule, candidate) : `value is ${value}`,
      ...(threshold !== undefined ? { threshold } : {}),
    };
  const low = rule.min !== undefined && value < rule.min;
  const high = rule.max !== undefined && value > rule.max;
  const passed = !low && !high;
  return {
    rule: name,
    passed,
    value,
    // With both bounds, the one it broke (or the lower one when it passed).
    threshold: high ? rule.max! : (rule.min ?? rule.max!),
    detail: passed
      ? `${num(value)} ${bounds}`
      : low
        ? `${num(value)} is below the floor ${num(rule.min!)}`
        : `${num(value)} is above the ceiling ${num(rule.max!)}`,
  };
}

/** One result per bound the rule gives (difference, ratio). */
function changeResults(rule: ChangeRule, input: GateInput): GateResult[] {
  const { candidate, champion, championError } = input;
  const better = rule.direction === "higher" ? "higher is better" : "lower is better";
  const bounds: { kind: "difference" | "ratio"; max: number }[] = [
    ...(rule.maxDrop !== undefined ? [{ kind: "difference" as const, max: rule.maxDrop }] : []),
    ...(rule.maxRatioDrop !== undefined ? [{ kind: "ratio" as const, max: rule.maxRatioDrop }] : []),
  ];
  // Both bounds of one rule read the same resamples: bootstrap once (seconds on a large holdout).
  let bound: ReturnType<typeof dropBound> | undefined;
  const boundOnce = (confidence: number) => {
    bound ??= dropBound(rule, confidence, input);
    return bound;
  };
  return bounds.map(({ kind, max }): GateResult => {
    const confidence = rule.confidence === undefined ? "" : ` at ${num(rule.confidence * 100)}% confidence`;
    const name = `change ${subject(rule)} vs champion (${better}): ${kind === "ratio" ? "relative drop" : "drop"} <= ${num(max)}${confidence}`;
    if (championError)
      return {
        rule: name,
        passed: false,
        threshold: max,
        detail: `the champion could not be evaluated: ${championError}`,
      };
    if (!champion)
      return { rule: name, passed: true, threshold: max, detail: "skipped: no champion (first model)" };
    // The candidate first: a metric the data leaves undefined for both (one class only in the
    // holdout) judges nothing, and must not pass as a head the champion lacks would.
    const after = metricValue(candidate, rule);
    if (after === undefined || !Number.isFinite(after))
      return {
        rule: name,
        passed: false,
        threshold: max,
        detail: `candidate: ${after === undefined ? notMeasured(rule, candidate) : `value is ${after}`}`,
      };
    const before = metricValue(champion, rule);
    if (!measures(champion, rule))
      // A champion without this head (one the new spec added) sets no bar to fall below.
      return {
        rule: name,
        passed: true,
        threshold: max,
        detail: `skipped: the champion has no ${subject(rule)} (a head it does not have)`,
      };
    if (before === undefined || !Number.isFinite(before))
      return {
        rule: name,
        passed: false,
        threshold: max,
        detail: `the champion's ${subject(rule)} is ${before} on this data, so the change cannot be judged`,
      };
    const drop = rule.direction === "higher" ? before - after : after - before;
    const measured = `candidate ${num(after)} vs champion ${num(before)}`;
    const scale = (d: number) => (kind === "difference" ? d : ratioOf(d, before));
    const shown = (x: number) => (kind === "ratio" ? `${num(x * 100)}%` : num(x));
    const what = kind === "ratio" ? "relative drop" : "drop";
    if (rule.confidence === undefined) {
      const value = scale(drop);
      const passed = value <= max;
      return {
        rule: name,
        passed,
        value,
        threshold: max,
        detail: `${measured}: ${what} ${shown(value)} ${passed ? "<=" : ">"} ${shown(max)}`,
      };
    }
    const upper = boundOnce(rule.confidence);
    if (typeof upper === "string")
      return { rule: name, passed: false, threshold: max, detail: `${measured}: ${upper}` };
    const value = scale(upper.upper);
    const passed = value <= max;
    // A point drop within the bound but an upper bound past it: the rows cannot tell.
    const thin =
      !passed && scale(drop) <= max
        ? "; the measured drop is within it, but the data is too small to show it"
        : "";
    return {
      rule: name,
      passed,
      value,
      threshold: max,
      detail: `${measured}: ${what} ${shown(scale(drop))}, upper bound ${shown(value)} ${passed ? "<=" : ">"} ${shown(max)} (${num(rule.confidence * 100)}%, paired bootstrap over ${upper.count} ${upper.unit})${thin}`,
    };
  });
}

/**
 * The drop's upper bound at `confidence`: the champion's and the candidate's scores of the same
 * rows, resampled together (trainer/metrics/paired-auc.ts). A string says why it cannot be had.
 */
function dropBound(rule: ChangeRule, confidence: number, input: GateInput): DropBound | string {
  // The drop's one-sided bound at `confidence` is the upper end of a two-sided interval at 2c − 1.
  const options = { resamples: GATE_RESAMPLES, level: 2 * confidence - 1 };
  if (rule.metric === "ndcg10") return ndcgBound(rule, options, input);
  const labels = input.labels?.[rule.on]?.[rule.task!];
  const after = input.candidate.rowScores?.[rule.on]?.[rule.task!];
  const before = input.champion?.rowScores?.[rule.on]?.[rule.task!];
  if (!labels || !after || !before) return "no per-row scores to bound the drop with";
  // The drop is metric(first) − metric(second): champion − candidate when higher is better.
  const [first, second] = rule.direction === "higher" ? [before, after] : [after, before];
  const kept =
    rule.metric === "auc" || rule.metric === "logloss" || rule.metric === "ece"
      ? keptRows(labels)
      : Array.from({ length: labels.length }, (_, i) => i).filter((i) => Number.isFinite(labels[i]));
  if (rule.metric === "auc") {
    const d = pairedAucDifference(labels, [first], [second], options);
    if (!Number.isFinite(d.high)) return "the bound is undefined on these rows (one class only)";
    return { upper: d.high, count: kept.length, unit: "rows" };
  }
  if (rule.metric === "r2" || rule.metric === "ece") {
    // Not means of a per-row value: each resample computes both models' statistic under its weights.
    const statistic = rule.metric === "r2" ? weightedExplainedVariance : weightedCalibrationError;
    const y = Float64Array.from(kept, (i) => labels[i]!);
    const [a, b] = [first, second].map((scores) => Float64Array.from(kept, (i) => scores[i]!));
    const d = pairedWeightedDifference(
      kept.length,
      (w) => statistic(y, a!, w) - statistic(y, b!, w),
      options,
    );
    if (!Number.isFinite(d.high))
      return `the bound is undefined on these rows (${rule.metric === "r2" ? "labels without spread" : "no labelled rows"})`;
    return { upper: d.high, count: kept.length, unit: "rows" };
  }
  // The other metrics are means of a per-row loss: their drop is the mean of the rows' differences.
  const loss = ROW_LOSSES[rule.metric as keyof typeof ROW_LOSSES];
  const losses = (scores: ArrayLike<number>) => Float64Array.from(kept, (i) => loss(labels[i]!, scores[i]!));
  const d = pairedMeanDifference(losses(first), losses(second), options);
  if (!Number.isFinite(d.high)) return "no labelled rows to bound the drop with";
  return { upper: d.high, count: kept.length, unit: "rows" };
}

/** A drop's upper bound, and what was resampled: the rows, or the groups for NDCG. */
interface DropBound {
  upper: number;
  count: number;
  unit: "rows" | "groups";
}

/** The bound of an NDCG@10 drop: the groups, not the rows, are what a paired bootstrap resamples. */
function ndcgBound(
  rule: ChangeRule,
  options: { resamples: number; level: number },
  input: GateInput,
): DropBound | string {
  const after = input.candidate.groupNdcg10?.[rule.on];
  const before = input.champion?.groupNdcg10?.[rule.on];
  if (!after || !before || after.length !== before.length) return "no per-group NDCG to bound the drop with";
  const kept: number[] = [];
  for (let g = 0; g < after.length; g++)
    if (!Number.isNaN(after[g]!) && !Number.isNaN(before[g]!)) kept.push(g);
  const [first, second] = rule.direction === "higher" ? [before, after] : [after, before];
  const d = pairedMeanDifference(
    Float64Array.from(kept, (g) => first[g]!),
    Float64Array.from(kept, (g) => second[g]!),
    options,
  );
  if (!Number.isFinite(d.high)) return "no group with a gain to bound the drop with";
  return { upper: d.high, count: kept.length, unit: "groups" };
}

/** The per-row losses whose mean is the metric, for the metrics a confidence bound applies to. */
const ROW_LOSSES = {
  logloss: rowLogloss,
  mse: (label: number, value: number) => (label - value) ** 2,
  mae: (label: number, value: number) => Math.abs(label - value),
} as const;

/** The drop as a share of the champion's magnitude; against 0, any drop is infinitely large. */
function ratioOf(drop: number, champion: number): number {
  if (champion !== 0) return drop / Math.abs(champion);
  return drop > 0 ? Number.POSITIVE_INFINITY : drop < 0 ? Number.NEGATIVE_INFINITY : 0;
}

function int8Results(rule: NonNullable<GateConfig["int8"]>, candidate: ModelScores): GateResult[] {
  const tasks =
    rule.tasks ??
    Object.entries(candidate.holdout.tasks)
      .filter(([, m]) => m.auc !== undefined)
      .map(([t]) => t);
  const threshold = rule.maxAucDrop;
  if (tasks.length === 0)
    return [
      { rule: "int8 parity", passed: false, threshold, detail: "no binary task with an AUC on the holdout" },
    ];
  return tasks.map((task): GateResult => {
    const name = `int8 parity ${task} auc: float32 − int8 <= ${num(threshold)}`;
    const int8 = candidate.int8Holdout?.tasks[task]?.auc;
    const float = candidate.holdout.tasks[task]?.auc;
    if (!candidate.int8Holdout)
      return {
        rule: name,
        passed: false,
        threshold,
        detail: "no int8 graph was evaluated (model.int8.onnx)",
      };
    if (float === undefined || int8 === undefined || !Number.isFinite(float) || !Number.isFinite(int8))
      return {
        rule: name,
        passed: false,
        threshold,
        detail: `AUC not measured (float32 ${float}, int8 ${int8})`,
      };
    const value = float - int8;
    const passed = value <= threshold;
    return {
      rule: name,
      passed,
      value,
      threshold,
      detail: `float32 ${num(float)}, int8 ${num(int8)}: drop ${num(value)} ${passed ? "<=" : ">"} ${num(threshold)}`,
    };
  });
}

function sizeResults(rule: NonNullable<GateConfig["size"]>, candidate: ModelScores): GateResult[] {
  const out: GateResult[] = [];
  const check = (file: string, budget: number, bytes: number | undefined) => {
    const name = `size ${file} <= ${budget} bytes`;
    if (bytes === undefined) {
      out.push({ rule: name, passed: false, threshold: budget, detail: `${file} was not exported` });
      return;
    }
    const passed = bytes <= budget;
    out.push({
      rule: name,
      passed,
      value: bytes,
      threshold: budget,
      detail: `${bytes} bytes ${passed ? "within" : "over"} the budget of ${budget}`,
    });
  };
  if (rule.modelBytes !== undefined) check("model.onnx", rule.modelBytes, candidate.sizes.modelBytes);
  if (rule.int8Bytes !== undefined) check("model.int8.onnx", rule.int8Bytes, candidate.sizes.int8Bytes);
  if (rule.manifestBytes !== undefined)
    check("manifest.json", rule.manifestBytes, candidate.sizes.manifestBytes);
  return out;
}

function infraResult(infra: InfraCheckResult | undefined): GateResult {
  const rule = "infra: both graphs load in onnxruntime-web and answer a request through the worker's code";
  if (!infra) return { rule, passed: false, detail: "the infra check did not run" };
  return { rule, passed: infra.passed, detail: infra.detail };
}
