/**
 * DIR/report.html: the training report (curves per epoch, task weights, per-task metrics,
 * calibration, label correlation, feature importance, set-up). Sections whose data is absent
 * (no diagnostics, no importance, static task weights) are left out or say so.
 */
import { join } from "node:path";
import type { TaskMetrics } from "../../shared/manifest.ts";
import type { TrainedModel, TrainingInfo } from "../artifact/trained-model.ts";
import { writeAtomic } from "../core/write-atomic.ts";
import type { ImportanceReport } from "../evaluate/importance.ts";
import type { TaskDiagnostics } from "../metrics/diagnostics.ts";
import { barChart } from "./bar-chart.ts";
import { correlationTable } from "./correlation-table.ts";
import { fmt, metricsTable } from "./metrics-table.ts";
import { COLORS, escapeHtml, lineChart, type Series } from "./svg-chart.ts";

export type ReportInput = Pick<TrainedModel, "config" | "encoder" | "validation" | "training">;

/** Training may log the task weights in force at each epoch (uncertainty weighting, GradNorm, DWA). */
type HistoryEntry = TrainingInfo["history"][number];

/** Numbers computed from a model's outputs on labelled rows: validation split or an `evaluate` run. */
export interface ReportDiagnostics extends Partial<TaskDiagnostics> {
  /** Where the rows came from, e.g. "validation split (4,050 rows)". */
  source: string;
  tasks?: Record<string, TaskMetrics & { oracleAuc?: number }>;
  importance?: ImportanceReport;
}

const IMPORTANCE_BARS = 15;

export function renderReport(model: ReportInput, diagnostics?: ReportDiagnostics): string {
  const { training, config } = model;
  const history: readonly HistoryEntry[] = training.history;
  const tasks = config.heads.map((h) => h.name);
  const colorOf = (task: string) => COLORS[tasks.indexOf(task) % COLORS.length]!;
  // Only tasks with a value in some epoch: a regression head has no AUC line, nor a legend entry.
  const metricSeries = (metric: keyof TaskMetrics): Series[] =>
    tasks
      .map((task) => ({
        name: task,
        color: colorOf(task),
        points: history.map(
          (e) => [e.epoch, Number(e.validation[task]?.[metric] ?? Number.NaN)] as [number, number],
        ),
      }))
      .filter((s) => s.points.some(([, y]) => Number.isFinite(y)));
  const hasRegression = config.heads.some((h) => h.type === "regression");
  const hasBinary = config.heads.some((h) => h.type === "binary");
  const charts = [
    lineChart(
      "Training loss (weighted sum over tasks)",
      [{ name: "train loss", points: history.map((e) => [e.epoch, e.trainLoss]) }],
      "epoch",
      "loss",
    ),
    ...(hasBinary
      ? [
          lineChart("Validation AUC per task", metricSeries("auc"), "epoch", "AUC"),
          lineChart("Validation logloss per task", metricSeries("logloss"), "epoch", "logloss"),
        ]
      : []),
    ...(hasRegression ? [lineChart("Validation MSE per task", metricSeries("mse"), "epoch", "MSE")] : []),
    ...taskCharts(history, tasks, colorOf),
  ];
  const weights = Object.entries(training.taskWeights)
    .map(([t, w]) => `${escapeHtml(t)}=${w}`)
    .join(", ");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>mtrank training report: ${escapeHtml(config.arch)}</title>
<style>
body{font-family:system-ui,sans-serif;margin:24px;color:#0f172a;max-width:1320px}
h1{font-size:20px}h2{font-size:16px;margin-top:28px}p.note{font-size:13px;color:#475569;max-width:900px}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #cbd5e1;padding:4px 10px;text-align:right}
td:first-child,th:first-child{text-align:left}.charts{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}
figure{margin:0}figcaption{font-size:12px;color:#475569;text-align:center;max-width:420px}
dl{display:grid;grid-template-columns:max-content auto;gap:2px 14px;font-size:13px}dt{color:#475569}
table.corr td,table.corr th{min-width:64px;text-align:center}
</style></head><body>
<h1>mtrank training report: ${escapeHtml(config.arch)}</h1>
<dl>
<dt>data</dt><dd>${escapeHtml(training.data)}</dd>
${trainingLines(training)}
<dt>task weights</dt><dd>${weights}${history.some((e) => e.taskWeights) ? " (configured; per-epoch values in the chart below)" : " (static)"}</dd>
${calibrationLine(training.calibration)}<dt>backend / seed</dt><dd>${escapeHtml(training.backend)} / ${training.seed}</dd>
<dt>created</dt><dd>${escapeHtml(training.createdAt)}</dd>
</dl>
<h2>Validation metrics (${training.folds ? "out of fold" : "best epoch"})</h2>
${metricsTable(model.validation)}
<h2>Curves</h2>
<div class="charts">${charts.join("\n")}</div>
${diagnostics ? diagnosticsSection(diagnostics, colorOf) : ""}
<h2>Features</h2>
<table><tr><th>feature</th><th>kind</th><th>side</th><th>embedding rows</th></tr>${featureRows(model)}</table>
</body></html>
`;
}

/** The binary heads' Platt scaling (fitted on validation after training) and its effect on ECE. */
function calibrationLine(calibration: TrainingInfo["calibration"]): string {
  if (!calibration) return "";
  const heads = Object.entries(calibration).map(
    ([head, c]) =>
      `${escapeHtml(head)}: σ(${c.scale.toFixed(3)}·z ${c.shift < 0 ? "−" : "+"} ${Math.abs(c.shift).toFixed(3)}), ECE ${c.eceBefore.toFixed(4)} → ${c.eceAfter.toFixed(4)}`,
  );
  return `<dt>calibration</dt><dd>${heads.join("; ")} (Platt, on validation; metrics below are calibrated)</dd>\n`;
}

export async function writeReport(
  dir: string,
  model: ReportInput,
  diagnostics?: ReportDiagnostics,
): Promise<string> {
  const path = join(dir, "report.html");
  await writeAtomic(path, renderReport(model, diagnostics));
  return path;
}

/**
 * Per-task training losses and task weights per epoch, when training logged them (models from
 * before they were logged have neither).
 */
function taskCharts(
  history: readonly HistoryEntry[],
  tasks: readonly string[],
  colorOf: (task: string) => string,
): string[] {
  const chart = (pick: (e: HistoryEntry) => Record<string, number> | undefined, title: string, y: string) => {
    if (!history.some((e) => pick(e))) return [];
    const series = tasks.map((task) => ({
      name: task,
      color: colorOf(task),
      points: history.map((e) => [e.epoch, pick(e)?.[task] ?? Number.NaN] as [number, number]),
    }));
    return [lineChart(title, series, "epoch", y)];
  };
  return [
    ...chart((e) => e.taskLosses, "Training loss per task (unweighted)", "loss"),
    ...chart((e) => e.taskWeights, "Task weights per epoch", "weight"),
  ];
}

function diagnosticsSection(d: ReportDiagnostics, colorOf: (task: string) => string): string {
  const parts = [`<h2>Evaluation on ${escapeHtml(d.source)}</h2>`];
  if (d.tasks) {
    const settings = [
      d.threshold !== undefined ? `accuracy, precision, recall and F1 at threshold ${d.threshold}` : "",
      d.calibrationBins ? `ECE over ${d.calibrationBins.bins} equal-${d.calibrationBins.binning} bins` : "",
    ].filter(Boolean);
    parts.push(metricsTable(d.tasks));
    if (settings.length > 0) parts.push(`<p class="note">${settings.join("; ")}.</p>`);
  }
  if (d.overall && d.overall.tasks.length > 0) {
    parts.push(
      `<p class="note">Overall AUC over ${d.overall.tasks.map(escapeHtml).join(", ")}: weighted ${fmt(d.overall.weightedAuc)}, harmonic mean ${fmt(d.overall.harmonicAuc)} (the harmonic mean is pulled down by the weakest task).</p>`,
    );
  }
  const curves = d.reliability ?? d.calibration;
  if (curves && Object.keys(curves).length > 0) {
    const isRegression = (task: string) => d.tasks?.[task]?.mse !== undefined;
    const regression = Object.keys(curves).some(isRegression);
    parts.push(
      "<h2>Calibration</h2>",
      `<p class="note">Mean predicted probability against the observed positive rate, rows sorted by prediction into ${d.reliability ? "equal-mass bins (the same number of rows in each)" : "the bins above"}; the dashed line is perfect calibration. Axes are zoomed to the range the predictions cover.${regression ? " Regression tasks: the mean label against the mean prediction in the same bins, in the units the task is trained on (log1p for a log1p task)." : ""}</p>`,
      `<div class="charts">${Object.entries(curves)
        .map(([task, bins]) =>
          isRegression(task)
            ? regressionChart(task, bins, d.tasks?.[task], colorOf(task))
            : calibrationChart(task, bins, d.tasks?.[task], colorOf(task)),
        )
        .join("\n")}</div>`,
    );
  }
  if (d.correlation && d.correlation.tasks.length > 1) {
    parts.push(
      "<h2>Task label correlation (Pearson)</h2>",
      correlationTable(d.correlation),
      `<p class="note">How much the tasks' labels move together: related tasks are what a shared bottom or shared experts can exploit.</p>`,
    );
  }
  if (d.importance) parts.push(importanceSection(d.importance, colorOf));
  return parts.join("\n");
}

function calibrationChart(
  task: string,
  bins: readonly { meanPredicted: number; observedRate: number }[],
  m: TaskMetrics | undefined,
  color: string,
): string {
  const top = Math.max(...bins.flatMap((b) => [b.meanPredicted, b.observedRate]));
  const domain = [0, niceCeil(top)] as const;
  const title = `${task}${m?.ece !== undefined ? `: ECE ${fmt(m.ece)}` : ""}${m?.calibrationRatio !== undefined ? `, predicted/observed ${fmt(m.calibrationRatio)}` : ""}`;
  return reliabilityChart(title, task, bins, color, domain, ["mean predicted probability", "observed rate"]);
}

/** Observed against predicted per bin on one square domain, with the diagonal of a perfect fit. */
function reliabilityChart(
  title: string,
  task: string,
  bins: readonly { meanPredicted: number; observedRate: number }[],
  color: string,
  domain: readonly [number, number],
  [xLabel, yLabel]: readonly [string, string],
): string {
  return lineChart(
    title,
    [{ name: task, color, points: bins.map((b) => [b.meanPredicted, b.observedRate]) }],
    xLabel,
    yLabel,
    { xDomain: domain, yDomain: domain, diagonal: true, width: 300, height: 280 },
  );
}

/** A regression head's reliability: mean label against mean prediction per bin, on shared axes. */
function regressionChart(
  task: string,
  bins: readonly { meanPredicted: number; observedRate: number }[],
  m: TaskMetrics | undefined,
  color: string,
): string {
  const values = bins.flatMap((b) => [b.meanPredicted, b.observedRate]);
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  const pad = (hi - lo) * 0.05 || 1;
  const domain = [lo - pad, hi + pad] as const;
  const title = `${task}${m?.r2 !== undefined ? `: R² ${fmt(m.r2)}` : ""}${m?.mse !== undefined ? `, MSE ${fmt(m.mse)}` : ""}`;
  return reliabilityChart(title, task, bins, color, domain, ["mean prediction", "mean label"]);
}

function importanceSection(imp: ImportanceReport, colorOf: (task: string) => string): string {
  const charts = Object.entries(imp.metric).map(([task, metric]) => {
    const bars = imp.features
      .map((f) => ({ label: f.feature, value: f.drop[task] ?? Number.NaN }))
      .sort((a, b) => b.value - a.value)
      .slice(0, IMPORTANCE_BARS);
    const what = metric === "auc" ? "AUC drop" : "MSE rise";
    return barChart(`${task}: ${what} when the feature is shuffled`, bars, what, colorOf(task));
  });
  return `<h2>Permutation feature importance</h2>
<p class="note">Each feature's encoded columns shuffled across ${imp.rows} rows (${imp.repeats} shuffle(s), seed ${imp.seed}); bars show how much each task's metric got worse, top ${IMPORTANCE_BARS} per task. Near zero or negative: the model does not rely on the feature.</p>
<div class="charts">${charts.join("\n")}</div>`;
}

function featureRows(model: ReportInput): string {
  return model.encoder.features
    .map(
      (f) =>
        `<tr><td>${escapeHtml(f.name)}</td><td>${f.kind}</td><td>${f.side}</td><td>${f.kind === "categorical" || f.kind === "multi_categorical" ? f.size : f.kind === "numeric" ? (f.buckets?.size ?? "-") : "-"}</td></tr>`,
    )
    .join("");
}

/** A round upper bound for an axis: 0.0372 -> 0.04, 0.63 -> 0.7, never above 1. */
function niceCeil(x: number): number {
  if (!(x > 0)) return 1;
  const step = 10 ** Math.floor(Math.log10(x));
  return Math.min(1, Math.ceil(x / step) * step);
}

/** Rows skipped as bad, and rows each masked task had no label on (left out of its loss and metrics). */
function rowsNote(training: TrainingInfo): string {
  const notes = [
    ...(training.rowsSkipped ? [`${training.rowsSkipped} bad rows skipped`] : []),
    ...Object.entries(training.rowsUnlabelled ?? {})
      .filter(([, n]) => n > 0)
      .map(([task, n]) => `${escapeHtml(task)}: ${n} rows without a label (masked)`),
  ];
  return notes.length > 0 ? `; ${notes.join("; ")}` : "";
}

/** Rows and epochs: of one network, or of the fold networks averaged into this one. */
function trainingLines(training: TrainingInfo): string {
  const folds = training.folds;
  if (!folds)
    return `<dt>rows</dt><dd>${training.trainRows} training, ${training.validRows} validation${rowsNote(training)}</dd>
<dt>epochs</dt><dd>${training.epochs} run, best ${training.bestEpoch} (weights restored from it)</dd>`;
  return `<dt>rows</dt><dd>${training.trainRows}, dealt into ${folds.length} folds of ${folds.map((f) => f.validRows).join(" / ")}${rowsNote(training)}</dd>
<dt>networks</dt><dd>the weight average of ${folds.length} fold networks from one start, each trained on the other folds and stopped early on its own; every row's validation output comes from the network that did not train on it</dd>
<dt>epochs</dt><dd>best ${folds.map((f) => f.bestEpoch).join(", ")} of ${folds.map((f) => f.epochs).join(", ")} run (the curves below: the first fold's)</dd>`;
}
