/** The evaluation report as plain-text tables for the terminal. */
import type { Comparison } from "./compare-models.ts";
import type { EvaluationReport } from "./evaluate-model.ts";

type Row = string[];

export function formatEvaluation(report: EvaluationReport, importanceTop = 20): string {
  const parts = [
    `evaluate: ${report.rows} rows, ${report.model.file} (${report.model.id}); threshold ${report.threshold}, ` +
      `ECE over ${report.calibrationBins.bins} equal-${report.calibrationBins.binning} bins` +
      (report.gaucBy ? `, GAUC by ${report.gaucBy}` : ""),
    table(taskRows(report)),
    overallLine(report),
  ];
  if (report.correlation.tasks.length > 1)
    parts.push("label correlation (Pearson)", table(correlationRows(report)));
  if (report.ranking) parts.push(rankingLine(report.ranking));
  if (report.importance) parts.push(...importanceLines(report.importance, importanceTop));
  return parts.join("\n");
}

/** `evaluate --against`: each binary task's AUC difference with its interval, one row a task. */
export function formatComparison(c: Comparison): string {
  const pct = `${Number((c.level * 100).toFixed(1))}%`;
  const signed = (x: number) => (Number.isNaN(x) ? "-" : `${x >= 0 ? "+" : "−"}${Math.abs(x).toFixed(4)}`);
  const rows: Row[] = [
    ["task", "auc", "against", "difference", `${pct} interval`, "not above", "rows"],
    ...Object.entries(c.tasks).map(([task, t]) => [
      task,
      fmt(t.auc),
      fmt(t.againstAuc),
      signed(t.difference),
      `[${signed(t.low)}, ${signed(t.high)}]`,
      t.notAbove.toFixed(3),
      String(t.rows),
    ]),
  ];
  return [
    `against ${c.against.id} ${c.against.version} (${c.against.file}): the same rows, paired bootstrap over them (${c.resamples} resamples); ` +
      "an interval that holds 0 does not tell the two apart",
    ...(Object.keys(c.tasks).length > 0 ? [table(rows)] : ["no binary task to compare"]),
    ...c.skipped.map((s) => `${s.task}: not compared: ${s.why}`),
  ].join("\n");
}

function taskRows(report: EvaluationReport): Row[] {
  const metrics = Object.values(report.tasks);
  const has = (key: keyof EvaluationReport["tasks"][string]) => metrics.some((m) => m[key] !== undefined);
  const columns = (
    [
      ["auc", "auc"],
      ["gauc", "gauc"],
      ["oracleAuc", "oracle auc"],
      ["logloss", "logloss"],
      ["accuracy", "acc"],
      ["precision", "prec"],
      ["recall", "recall"],
      ["f1", "f1"],
      ["ece", "ece"],
      ["calibrationRatio", "pred/obs"],
      ["mse", "mse"],
      ["mae", "mae"],
      ["r2", "r²"],
      ["positiveRate", "positive"],
    ] as const
  ).filter(([key]) => has(key));
  const rows: Row[] = [["task", ...columns.map(([, title]) => title), "rows"]];
  for (const [task, m] of Object.entries(report.tasks))
    rows.push([task, ...columns.map(([key]) => fmt(m[key])), String(m.count)]);
  return rows;
}

function overallLine(report: EvaluationReport): string {
  const o = report.overall;
  if (o.tasks.length === 0) return "overall: no binary task with an AUC";
  return `overall AUC over ${o.tasks.join(", ")}: weighted by fusion weights ${fmt(o.weightedAuc)}, harmonic mean ${fmt(o.harmonicAuc)}`;
}

function correlationRows(report: EvaluationReport): Row[] {
  const { tasks, matrix } = report.correlation;
  return [["", ...tasks], ...tasks.map((t, i) => [t, ...matrix[i]!.map((r) => fmt(r))])];
}

function rankingLine(r: NonNullable<EvaluationReport["ranking"]>): string {
  const oracle =
    r.oracleNdcg10 !== undefined
      ? `; against the true probabilities ${fmt(r.oracleNdcg10)} (input order ${fmt(r.inputOracleNdcg10)})`
      : "";
  return `ranking over ${r.groups} groups, NDCG@10 of the fused score: ${fmt(r.ndcg10)} (input order ${fmt(r.inputNdcg10)})${oracle}`;
}

function importanceLines(imp: NonNullable<EvaluationReport["importance"]>, top: number): string[] {
  const tasks = Object.keys(imp.metric);
  const strongest = (f: (typeof imp.features)[number]) => Math.max(...tasks.map((t) => f.drop[t] ?? 0));
  const sorted = [...imp.features].sort((a, b) => strongest(b) - strongest(a));
  const shown = sorted.slice(0, top);
  const rows: Row[] = [
    ["feature", ...tasks.map((t) => `${t} (${imp.metric[t] === "auc" ? "AUC drop" : "MSE rise"})`)],
    ...shown.map((f) => [f.feature, ...tasks.map((t) => fmt(f.drop[t]))]),
  ];
  const more = sorted.length > shown.length ? ` (top ${shown.length} of ${sorted.length} shown)` : "";
  return [
    `permutation importance over ${imp.rows} rows, ${imp.repeats} shuffle(s) per feature, seed ${imp.seed}${more}`,
    table(rows),
  ];
}

function table(rows: readonly Row[]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? "").length)));
  return rows
    .map((r) =>
      r
        .map((cell, c) => cell.padEnd(widths[c]!))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

function fmt(x: number | undefined): string {
  return x === undefined || Number.isNaN(x) ? "-" : x.toFixed(4);
}
