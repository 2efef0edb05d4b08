/** Plain-text tables for the terminal. */
import type { TaskMetrics } from "../../shared/manifest.ts";

/** One line of each task's headline metric: AUC for binary heads, MSE for regression heads. */
export function headlineMetrics(metrics: Readonly<Record<string, TaskMetrics>>): string {
  return Object.entries(metrics)
    .map(([task, m]) => (m.mse !== undefined ? `${task} mse ${fmt(m.mse)}` : `${task} auc ${fmt(m.auc)}`))
    .join("  ");
}

export function metricsTable(
  metrics: Record<string, TaskMetrics & { gauc?: number; oracleAuc?: number }>,
): string {
  const withGauc = Object.values(metrics).some((m) => m.gauc !== undefined);
  const withOracle = Object.values(metrics).some((m) => m.oracleAuc !== undefined);
  const withR2 = Object.values(metrics).some((m) => m.r2 !== undefined);
  const rows = [
    [
      "task",
      "auc",
      ...(withGauc ? ["gauc"] : []),
      ...(withOracle ? ["oracle auc"] : []),
      "logloss",
      "mse",
      ...(withR2 ? ["r²"] : []),
      "positive",
      "rows",
    ],
  ];
  for (const [task, m] of Object.entries(metrics)) {
    const gauc = withGauc ? [fmt(m.gauc)] : [];
    const oracle = withOracle ? [fmt(m.oracleAuc)] : [];
    rows.push([
      task,
      fmt(m.auc),
      ...gauc,
      ...oracle,
      fmt(m.logloss),
      fmt(m.mse),
      ...(withR2 ? [fmt(m.r2)] : []),
      fmt(m.positiveRate),
      String(m.count),
    ]);
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((cell, c) => cell.padEnd(widths[c]!)).join("  ")).join("\n");
}

function fmt(x: number | undefined): string {
  return x === undefined || Number.isNaN(x) ? "-" : x.toFixed(4);
}
