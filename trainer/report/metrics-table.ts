/** Per-task metrics as an HTML table; a column appears when any task has a value for it. */
import type { TaskMetrics } from "../../shared/manifest.ts";
import { escapeHtml } from "./svg-chart.ts";

const COLUMNS: readonly (readonly [keyof TaskMetrics | "oracleAuc", string])[] = [
  ["auc", "AUC"],
  ["gauc", "GAUC"],
  ["oracleAuc", "oracle AUC"],
  ["logloss", "logloss"],
  ["accuracy", "accuracy"],
  ["precision", "precision"],
  ["recall", "recall"],
  ["f1", "F1"],
  ["ece", "ECE"],
  ["calibrationRatio", "pred/obs"],
  ["mse", "MSE"],
  ["mae", "MAE"],
  ["r2", "R²"],
  ["positiveRate", "positive rate"],
];

export function metricsTable(
  metrics: Readonly<Record<string, TaskMetrics & { oracleAuc?: number }>>,
): string {
  const all = Object.values(metrics);
  const columns = COLUMNS.filter(([key]) => all.some((m) => m[key] !== undefined));
  const head = `<tr><th>task</th>${columns.map(([, title]) => `<th>${title}</th>`).join("")}<th>rows</th></tr>`;
  const rows = Object.entries(metrics)
    .map(
      ([task, m]) =>
        `<tr><td>${escapeHtml(task)}</td>${columns.map(([key]) => `<td>${fmt(m[key])}</td>`).join("")}<td>${m.count}</td></tr>`,
    )
    .join("");
  return `<table>${head}${rows}</table>`;
}

export function fmt(x: number | undefined): string {
  return x === undefined || !Number.isFinite(x) ? "-" : x.toFixed(4);
}
