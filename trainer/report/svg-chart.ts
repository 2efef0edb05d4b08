/** A small line chart as inline SVG: enough for training curves, no plotting dependency. */

export interface Series {
  name: string;
  points: readonly [number, number][];
  /** Default: by position. Pass one to keep a task's colour the same across charts. */
  color?: string;
}

export const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2"];

export interface ChartOptions {
  /** Fixed axis ranges (default: the data's extent, y with a 5% margin). */
  xDomain?: readonly [number, number];
  yDomain?: readonly [number, number];
  /** A dashed y = x line, e.g. perfect calibration. */
  diagonal?: boolean;
  width?: number;
  height?: number;
}

export function lineChart(
  title: string,
  series: readonly Series[],
  xLabel: string,
  yLabel: string,
  options: ChartOptions = {},
): string {
  const width = options.width ?? 420;
  const height = options.height ?? 240;
  const pad = { left: 52, right: 12, top: 28, bottom: 36 };
  const all = series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  if (all.length === 0) return `<figure><figcaption>${escapeHtml(title)}: no data</figcaption></figure>`;
  const [x0, x1] =
    options.xDomain ??
    extent(
      all.map(([x]) => x),
      0,
    );
  const [y0, y1] =
    options.yDomain ??
    extent(
      all.map(([, y]) => y),
      0.05,
    );
  const sx = (x: number) => pad.left + ((x - x0) / (x1 - x0 || 1)) * (width - pad.left - pad.right);
  const sy = (y: number) =>
    height - pad.bottom - ((y - y0) / (y1 - y0 || 1)) * (height - pad.top - pad.bottom);
  const lines = series.map((s, i) => {
    const color = s.color ?? COLORS[i % COLORS.length]!;
    const pts = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
    const path = pts
      .map(([x, y], k) => `${k === 0 ? "M" : "L"}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`)
      .join(" ");
    const dots = pts
      .map(([x, y]) => `<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="2.5" fill="${color}"/>`)
      .join("");
    const legend = `<text x="${pad.left + 8 + i * 110}" y="${pad.top - 10}" fill="${color}" font-size="11">${escapeHtml(s.name)}</text>`;
    return `<path d="${path}" fill="none" stroke="${color}" stroke-width="1.8"/>${dots}${legend}`;
  });
  const lo = Math.max(x0, y0);
  const hi = Math.min(x1, y1);
  const diagonal =
    options.diagonal && hi > lo
      ? `<line x1="${sx(lo).toFixed(1)}" y1="${sy(lo).toFixed(1)}" x2="${sx(hi).toFixed(1)}" y2="${sy(hi).toFixed(1)}" stroke="#94a3b8" stroke-dasharray="4 3"/>`
      : "";
  const ticks = [y0, (y0 + y1) / 2, y1]
    .map(
      (y) =>
        `<text x="${pad.left - 6}" y="${sy(y) + 4}" font-size="10" text-anchor="end">${formatTick(y)}</text>`,
    )
    .join("");
  // Whole-number x values (epochs) get one tick each; anything else gets its two ends.
  const xs = [...new Set(all.map(([x]) => x))].sort((a, b) => a - b);
  const xTickValues = xs.every(Number.isInteger) && xs.length <= 30 ? xs : [x0, (x0 + x1) / 2, x1];
  const xTicks = xTickValues
    .map(
      (x) =>
        `<text x="${sx(x)}" y="${height - pad.bottom + 14}" font-size="10" text-anchor="middle">${formatTick(x)}</text>`,
    )
    .join("");
  return `<figure><svg viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="${escapeHtml(title)}">
<rect x="${pad.left}" y="${pad.top}" width="${width - pad.left - pad.right}" height="${height - pad.top - pad.bottom}" fill="#f8fafc" stroke="#cbd5e1"/>
${diagonal}${lines.join("\n")}${ticks}${xTicks}
<text x="${(width + pad.left) / 2}" y="${height - 6}" font-size="11" text-anchor="middle">${escapeHtml(xLabel)}</text>
<text x="12" y="${(height - pad.bottom + pad.top) / 2}" font-size="11" text-anchor="middle" transform="rotate(-90 12 ${(height - pad.bottom + pad.top) / 2})">${escapeHtml(yLabel)}</text>
</svg><figcaption>${escapeHtml(title)}</figcaption></figure>`;
}

function extent(values: number[], marginFraction: number): [number, number] {
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  if (lo === hi) {
    lo -= 0.5;
    hi += 0.5;
  }
  const margin = (hi - lo) * marginFraction;
  return [lo - margin, hi + margin];
}

function formatTick(x: number): string {
  if (Number.isInteger(x) || Math.abs(x) >= 100) return x.toFixed(0);
  return String(Number(x.toPrecision(3))); // 0.0450 -> "0.045"
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
