/** DIR/report.html: the training report (curves per epoch, final per-task metrics, set-up). */
import { join } from "node:path";
import type { TaskMetrics } from "../../shared/manifest.ts";
import { type TrainedModel, writeAtomic } from "../artifact/trained-model.ts";
import { escapeHtml, lineChart } from "./svg-chart.ts";

export type ReportInput = Pick<TrainedModel, "config" | "encoder" | "validation" | "training">;

export function renderReport(model: ReportInput): string {
  const { training, config } = model;
  const history = training.history;
  const tasks = config.heads.map((h) => h.name);
  const metricSeries = (metric: keyof TaskMetrics) =>
    tasks.map((task) => ({
      name: task,
      points: history.map(
        (e) => [e.epoch, Number(e.validation[task]?.[metric] ?? Number.NaN)] as [number, number],
      ),
    }));
  const charts = [
    lineChart(
      "Training loss (weighted sum over tasks)",
      [{ name: "train loss", points: history.map((e) => [e.epoch, e.trainLoss]) }],
      "epoch",
      "loss",
    ),
    lineChart("Validation AUC per task", metricSeries("auc"), "epoch", "AUC"),
    lineChart("Validation logloss per task", metricSeries("logloss"), "epoch", "logloss"),
  ];
  const rows = Object.entries(model.validation)
    .map(
      ([task, m]) =>
        `<tr><td>${escapeHtml(task)}</td><td>${fmt(m.auc)}</td><td>${fmt(m.logloss)}</td><td>${fmt(m.mse)}</td><td>${fmt(m.positiveRate)}</td><td>${m.count}</td></tr>`,
    )
    .join("");
  const features = model.encoder.features
    .map(
      (f) =>
        `<tr><td>${escapeHtml(f.name)}</td><td>${f.kind}</td><td>${f.side}</td><td>${f.kind === "categorical" ? f.size : (f.buckets?.size ?? "-")}</td></tr>`,
    )
    .join("");
  const weights = Object.entries(training.taskWeights)
    .map(([t, w]) => `${escapeHtml(t)}=${w}`)
    .join(", ");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>mtrank training report: ${escapeHtml(config.arch)}</title>
<style>
body{font-family:system-ui,sans-serif;margin:24px;color:#0f172a;max-width:1320px}
h1{font-size:20px}h2{font-size:16px;margin-top:28px}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #cbd5e1;padding:4px 10px;text-align:right}
td:first-child,th:first-child{text-align:left}.charts{display:flex;flex-wrap:wrap;gap:16px}
figure{margin:0}figcaption{font-size:12px;color:#475569;text-align:center}dl{display:grid;grid-template-columns:max-content auto;gap:2px 14px;font-size:13px}dt{color:#475569}
</style></head><body>
<h1>mtrank training report: ${escapeHtml(config.arch)}</h1>
<dl>
<dt>data</dt><dd>${escapeHtml(training.data)}</dd>
<dt>rows</dt><dd>${training.trainRows} training, ${training.validRows} validation</dd>
<dt>epochs</dt><dd>${training.epochs} run, best ${training.bestEpoch} (weights restored from it)</dd>
<dt>task weights</dt><dd>${weights}</dd>
<dt>backend / seed</dt><dd>${escapeHtml(training.backend)} / ${training.seed}</dd>
<dt>created</dt><dd>${escapeHtml(training.createdAt)}</dd>
</dl>
<h2>Validation metrics (best epoch)</h2>
<table><tr><th>task</th><th>AUC</th><th>logloss</th><th>MSE</th><th>positive rate</th><th>rows</th></tr>${rows}</table>
<h2>Curves</h2>
<div class="charts">${charts.join("\n")}</div>
<h2>Features</h2>
<table><tr><th>feature</th><th>kind</th><th>side</th><th>embedding rows</th></tr>${features}</table>
</body></html>
`;
}

export async function writeReport(dir: string, model: ReportInput): Promise<string> {
  const path = join(dir, "report.html");
  await writeAtomic(path, renderReport(model));
  return path;
}

function fmt(x: number | undefined): string {
  return x === undefined || Number.isNaN(x) ? "-" : x.toFixed(4);
}
