/** Horizontal bars as inline SVG (feature importance): labels left, bars from a zero line. */
import { escapeHtml } from "./svg-chart.ts";

export interface Bar {
  label: string;
  value: number;
}

export function barChart(title: string, bars: readonly Bar[], valueLabel: string, color = "#2563eb"): string {
  const shown = bars.filter((b) => Number.isFinite(b.value));
  if (shown.length === 0) return `<figure><figcaption>${escapeHtml(title)}: no data</figcaption></figure>`;
  const width = 420;
  const row = 18;
  const pad = { left: 128, right: 56, top: 10, bottom: 30 };
  const height = pad.top + shown.length * row + pad.bottom;
  const lo = Math.min(0, ...shown.map((b) => b.value));
  const hi = Math.max(0, ...shown.map((b) => b.value));
  const span = hi - lo || 1;
  const sx = (v: number) => pad.left + ((v - lo) / span) * (width - pad.left - pad.right);
  const zero = sx(0);
  const rows = shown.map((b, i) => {
    const y = pad.top + i * row;
    const x = Math.min(zero, sx(b.value));
    const w = Math.abs(sx(b.value) - zero);
    const label = b.label.length > 20 ? `${b.label.slice(0, 19)}…` : b.label;
    return (
      `<text x="${pad.left - 6}" y="${y + 12.5}" font-size="11" text-anchor="end">${escapeHtml(label)}</text>` +
      `<rect x="${x.toFixed(1)}" y="${y + 3}" width="${Math.max(w, 0.5).toFixed(1)}" height="${row - 6}" fill="${b.value < 0 ? "#94a3b8" : color}"><title>${escapeHtml(b.label)}: ${b.value.toPrecision(3)}</title></rect>` +
      `<text x="${(Math.max(zero, sx(b.value)) + 4).toFixed(1)}" y="${y + 12.5}" font-size="10" fill="#475569">${formatValue(b.value)}</text>`
    );
  });
  const axisY = pad.top + shown.length * row;
  return `<figure><svg viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="${escapeHtml(title)}">
<line x1="${zero.toFixed(1)}" y1="${pad.top}" x2="${zero.toFixed(1)}" y2="${axisY}" stroke="#64748b"/>
${rows.join("\n")}
<text x="${(pad.left + width - pad.right) / 2}" y="${height - 8}" font-size="11" text-anchor="middle">${escapeHtml(valueLabel)}</text>
</svg><figcaption>${escapeHtml(title)}</figcaption></figure>`;
}

function formatValue(v: number): string {
  return Math.abs(v) >= 0.01 || v === 0 ? v.toFixed(3) : v.toExponential(1);
}
