/** The label correlation matrix as an HTML table, cells shaded by r (blue positive, red negative). */
import type { CorrelationMatrix } from "../metrics/correlation.ts";
import { escapeHtml } from "./svg-chart.ts";

export function correlationTable({ tasks, matrix }: CorrelationMatrix): string {
  const head = `<tr><th></th>${tasks.map((t) => `<th>${escapeHtml(t)}</th>`).join("")}</tr>`;
  const rows = tasks
    .map((t, i) => {
      const cells = matrix[i]!.map((r) => {
        if (!Number.isFinite(r)) return `<td title="a constant label has no correlation">-</td>`;
        const alpha = Math.min(1, Math.abs(r)).toFixed(2);
        const rgb = r >= 0 ? "37,99,235" : "220,38,38";
        const ink = Math.abs(r) > 0.6 ? "#fff" : "#0f172a";
        return `<td style="background:rgba(${rgb},${alpha});color:${ink}">${r.toFixed(3)}</td>`;
      });
      return `<tr><td>${escapeHtml(t)}</td>${cells.join("")}</tr>`;
    })
    .join("");
  return `<table class="corr">${head}${rows}</table>`;
}
