/**
 * The run record: one JSON document per pipeline run (and per rollback, promote or gc), written
 * whatever the outcome, so every pointer move and every refusal can be traced to its numbers.
 * It goes to the registry (registry/history.ts putRecord, `runs/<time>-<id>.json`) and, with an
 * HTML page that sets candidate and champion side by side, into the run's work folder.
 *
 * history.ts's gc keeps the models that `published.prefix` and `champion.prefix` of recent
 * records name, so those two fields keep that shape.
 */
import { randomBytes } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { TaskMetrics } from "../../shared/manifest.ts";
import { fmt } from "../report/metrics-table.ts";
import { COLORS, escapeHtml, lineChart } from "../report/svg-chart.ts";
import type { Completeness } from "./complete.ts";
import type { DriftReport, GateDecision, ModelSizes, PointerName, PublishedModel } from "./contracts.ts";
import type { ModelEvaluation } from "./gate.ts";
import type { HoldoutOverlap } from "./overlap.ts";
import type { SmokeResult } from "./smoke.ts";

/** The record's format; bump when a field changes meaning. */
export const RECORD_FORMAT = 1;

export type RecordKind = "run" | "rollback" | "promote" | "gc" | "unlock";

/**
 * How it ended. run: published (pointer moved), refused (the gate said no, or drift stopped it),
 * not-ready (data.complete: the source was not complete, nothing read), dry-run (would have
 * published or not; nothing moved), rolled-back (published, smoke test failed, pointer restored),
 * failed (an error; the champion unchanged). The other kinds: done.
 */
export type Outcome = "published" | "refused" | "not-ready" | "dry-run" | "rolled-back" | "failed" | "done";

export interface DataFileRecord {
  path: string;
  bytes: number;
  sha256: string;
  /** Data rows read from it, bad ones included. */
  rows?: number;
  /** Where it was downloaded from (an s3:// object's URL): its name across runs, as `path` is a local file's. */
  source?: string;
  /** The sha256 of its first 64 KiB, for a longer file (delivered.ts compares these first). */
  head?: string;
}

/** One step of the run, as logged. */
export interface StepRecord {
  step: string;
  seconds: number;
  /** The step's one line. */
  detail: string;
  ok: boolean;
}

/** One model as the record names it. */
export interface ModelRef {
  id: string;
  version: string;
  /** The registry prefix it is (or was published) under; absent for an unpublished candidate. */
  prefix?: string;
}

export interface RunRecord {
  format: typeof RECORD_FORMAT;
  kind: RecordKind;
  /** 8 random hex digits (newRunId); with startedAt, the record's key. */
  runId: string;
  startedAt: string;
  finishedAt: string;
  outcome: Outcome;
  /** The process's exit status for this run (0 published or dry-run, 2 refused, 3 not-ready, 1 otherwise). */
  exitCode: number;
  /** One line: why it ended as it did. */
  reason: string;
  /** Where it wrote: registry.describe. */
  registry: string;
  /** The pointer this run targeted. */
  pointer: PointerName;
  dryRun: boolean;
  /** --force-publish with its reason: the gate's or drift's refusal was overridden. */
  forced?: { reason: string };
  config?: { file: string; sha256: string };
  /** The config's warnings (config.ts checkGate): settings allowed but weakening the gate. */
  warnings?: string[];
  /** data.complete's check of the source (complete.ts): what it found, and what was missing. */
  complete?: Completeness;
  data?: {
    files: DataFileRecord[];
    rowsRead: number;
    rowsSkipped: number;
    /** Skipped rows per reason (data.ts checkData). */
    skipped: Record<string, number>;
    /** The frozen holdout's rows the day's data also holds (overlap.ts). */
    holdoutOverlap?: HoldoutOverlap;
    /** An earlier published run whose data files had every sha256 of this day's (forced on). */
    publishedBefore?: { runId: string; prefix: string };
    /**
     * The day's files earlier published runs trained on, when they did not have all of them: by
     * sha256, or (bytesBefore) the file's first bytes under the same name (delivered.ts).
     */
    partlyPublishedBefore?: { path: string; runId: string; prefix: string; bytesBefore?: number }[];
  };
  spec?: { path: string; sha256: string; championSha256?: string };
  drift?: DriftReport & { skipped?: string };
  training?: {
    /** warm-start from the champion, or scratch, and why. */
    mode: "warm-start" | "scratch";
    why: string;
    arch: string;
    trainRows: number;
    validRows: number;
    bestEpoch: number;
    seconds: number;
    validation: Record<string, TaskMetrics>;
  };
  candidate?: ModelRef & { sizes: ModelSizes; fusion?: unknown };
  /** The model the pointer named when the run began (gc keeps it while the record is recent). */
  champion?: ModelRef;
  /** Both models on the same data. */
  metrics?: {
    holdout: { path: string; candidate?: ModelEvaluation; champion?: ModelEvaluation };
    holdoutInt8?: { candidate?: ModelEvaluation; champion?: ModelEvaluation };
    newest?: { description: string; candidate?: ModelEvaluation; champion?: ModelEvaluation };
  };
  gate?: GateDecision;
  /** The model the pointer moved to, and what it named before. */
  published?: PublishedModel & { pointer: PointerName; previous?: string };
  smoke?: SmokeResult;
  /** A pointer moved back: after a failed smoke test, or by `pipeline rollback`. */
  rollback?: { pointer: PointerName; from?: string; to: string; why: string };
  /**
   * A flip an earlier run made and did not see through (intent.ts), found by this run: what it
   * was and what was done (kept, rolled-back, not-flipped; left by a dry run).
   */
  recovered?: {
    runId: string;
    pointer: PointerName;
    candidate: string;
    previous?: string;
    action: "kept" | "rolled-back" | "not-flipped" | "left";
    detail: string;
    smoke?: SmokeResult;
    stored?: string;
  };
  /** An error that ended the run (also in `reason`). */
  error?: string;
  /** gc: what it deleted. */
  gc?: { keep: number; deleted: string[]; kept: string[] };
  steps: StepRecord[];
}

/**
 * A new run id: 8 random hex digits. The record's key (registry/history.ts) and the run's work
 * folder put the start time before it, so they sort by time without the id repeating it.
 */
export function newRunId(): string {
  return randomBytes(4).toString("hex");
}

/** Writes record.json and record.html into `dir`; returns their paths. */
export async function writeRecordFiles(
  dir: string,
  record: RunRecord,
): Promise<{ json: string; html: string }> {
  await mkdir(dir, { recursive: true });
  const json = join(dir, "record.json");
  const html = join(dir, "record.html");
  await writeFile(json, `${JSON.stringify(record, null, 2)}\n`);
  await writeFile(html, renderRecordHtml(record));
  return { json, html };
}

/** The outcome in one line, as `pipeline history` prints it. */
export function recordLine(record: RunRecord): string {
  const model = record.published
    ? `${record.published.id} ${record.published.version} (${record.published.prefix})`
    : record.candidate
      ? `${record.candidate.id} ${record.candidate.version}`
      : "";
  return [record.startedAt, record.kind, record.outcome, model, record.reason].filter(Boolean).join("  ");
}

// ---- the HTML page ---------------------------------------------------------------------------

const METRICS: readonly [keyof TaskMetrics, string, "higher" | "lower" | "none"][] = [
  ["auc", "AUC", "higher"],
  ["gauc", "GAUC", "higher"],
  ["logloss", "logloss", "lower"],
  ["ece", "ECE", "lower"],
  ["calibrationRatio", "pred/obs", "none"],
  ["mse", "MSE", "lower"],
  ["mae", "MAE", "lower"],
  ["r2", "R²", "higher"],
];

const OUTCOME_COLOR: Record<Outcome, string> = {
  published: "#16a34a",
  done: "#16a34a",
  "dry-run": "#2563eb",
  refused: "#ea580c",
  "not-ready": "#ca8a04",
  "rolled-back": "#dc2626",
  failed: "#dc2626",
};

/** A self-contained page (inline CSS and SVG, no external assets): candidate against champion. */
export function renderRecordHtml(r: RunRecord): string {
  const e = escapeHtml;
  const title = `mtrank pipeline ${r.kind} ${r.runId}: ${r.outcome}`;
  const facts: [string, string][] = [
    ["started / finished", `${r.startedAt} / ${r.finishedAt}`],
    ["registry / pointer", `${r.registry} / ${r.pointer}`],
    ...(r.dryRun ? [["dry run", "yes: nothing published"] as [string, string]] : []),
    ...(r.forced ? [["forced", `--force-publish: ${r.forced.reason}`] as [string, string]] : []),
    ...(r.recovered
      ? [["earlier flip", `${r.recovered.action}: ${r.recovered.detail}`] as [string, string]]
      : []),
    ...(r.complete
      ? [["data complete", `${r.complete.ready ? "yes" : "no"}: ${r.complete.detail}`] as [string, string]]
      : []),
    ...(r.config
      ? [["config", `${r.config.file} (sha256 ${r.config.sha256.slice(0, 12)})`] as [string, string]]
      : []),
    ...(r.spec
      ? [
          [
            "spec",
            `${r.spec.path} (sha256 ${r.spec.sha256.slice(0, 12)}${r.spec.championSha256 && r.spec.championSha256 !== r.spec.sha256 ? `; champion's ${r.spec.championSha256.slice(0, 12)}: changed` : ""})`,
          ] as [string, string],
        ]
      : []),
    ...(r.training
      ? [
          [
            "training",
            `${r.training.mode} (${r.training.why}); ${r.training.arch}, ${r.training.trainRows} rows (validation ${r.training.validRows}), best epoch ${r.training.bestEpoch}, ${r.training.seconds.toFixed(1)} s`,
          ] as [string, string],
        ]
      : []),
    ...(r.candidate
      ? [
          [
            "candidate",
            `${r.candidate.id} ${r.candidate.version}; model.onnx ${r.candidate.sizes.modelBytes} bytes${r.candidate.sizes.int8Bytes !== undefined ? `, model.int8.onnx ${r.candidate.sizes.int8Bytes} bytes` : ""}${r.candidate.sizes.manifestBytes !== undefined ? `, manifest.json ${r.candidate.sizes.manifestBytes} bytes` : ""}`,
          ] as [string, string],
        ]
      : []),
    [
      "champion",
      r.champion
        ? `${r.champion.id} ${r.champion.version} (${r.champion.prefix ?? "-"})`
        : "none (first model)",
    ],
    ...(r.published
      ? [
          [
            "published",
            `${r.published.prefix} → ${r.published.pointer}${r.published.previous ? ` (was ${r.published.previous})` : ""}`,
          ] as [string, string],
        ]
      : []),
    ...(r.rollback
      ? [
          [
            "rollback",
            `${r.rollback.pointer}: ${r.rollback.from ?? "-"} → ${r.rollback.to} (${r.rollback.why})`,
          ] as [string, string],
        ]
      : []),
    ...(r.smoke
      ? [["smoke test", `${r.smoke.passed ? "passed" : "FAILED"}: ${r.smoke.detail}`] as [string, string]]
      : []),
  ];
  const sections = [
    r.metrics ? metricsSection(r.metrics) : "",
    r.gate ? gateSection(r.gate) : "",
    r.drift ? driftSection(r.drift) : "",
    r.data ? dataSection(r.data) : "",
    r.gc
      ? `<h2>Garbage collection</h2><p>kept the newest ${r.gc.keep} records' models; deleted ${r.gc.deleted.length}: ${e(r.gc.deleted.join(", ") || "nothing")}</p>`
      : "",
    stepsSection(r.steps),
  ];
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${e(title)}</title>
<style>
body{font-family:system-ui,sans-serif;margin:24px;color:#0f172a;max-width:1320px}
h1{font-size:20px}h2{font-size:16px;margin-top:28px}p.note{font-size:13px;color:#475569;max-width:900px}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #cbd5e1;padding:4px 10px;text-align:right}
td:first-child,th:first-child{text-align:left}td.l{text-align:left}.charts{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}
figure{margin:0}figcaption{font-size:12px;color:#475569;text-align:center;max-width:420px}
dl{display:grid;grid-template-columns:max-content auto;gap:2px 14px;font-size:13px}dt{color:#475569}
.badge{display:inline-block;padding:4px 12px;border-radius:4px;color:#fff;font-weight:600}
.pass{color:#16a34a}.fail{color:#dc2626;font-weight:600}.better{color:#16a34a}.worse{color:#dc2626}
</style></head><body>
<h1>mtrank pipeline ${e(r.kind)} ${e(r.runId)}</h1>
<p><span class="badge" style="background:${OUTCOME_COLOR[r.outcome]}">${e(r.outcome)}</span> ${e(r.reason)}</p>
<dl>
${facts.map(([k, v]) => `<dt>${e(k)}</dt><dd>${e(v)}</dd>`).join("\n")}
</dl>
${sections.join("\n")}
</body></html>
`;
}

type Pair = { candidate?: ModelEvaluation; champion?: ModelEvaluation };

function metricsSection(m: NonNullable<RunRecord["metrics"]>): string {
  const parts = [
    `<h2>Candidate against champion: frozen holdout</h2>\n<p class="note">${escapeHtml(m.holdout.path)}; both models run by onnxruntime (float32 graphs) on the same rows. Δ is candidate − champion, coloured by which way is better.</p>`,
    comparisonTable(m.holdout),
  ];
  if (m.holdoutInt8) parts.push("<h2>int8 graphs on the holdout</h2>", comparisonTable(m.holdoutInt8));
  if (m.newest)
    parts.push(
      `<h2>Newest slice of the new data</h2>\n<p class="note">${escapeHtml(m.newest.description)}</p>`,
      comparisonTable(m.newest),
    );
  parts.push(reliabilityCharts(m.holdout));
  return parts.join("\n");
}

function comparisonTable(pair: Pair): string {
  const { candidate, champion } = pair;
  if (!candidate && !champion) return "<p>not evaluated</p>";
  const tasks = [...new Set([...Object.keys(candidate?.tasks ?? {}), ...Object.keys(champion?.tasks ?? {})])];
  const metricsOf = (task: string) => [candidate?.tasks[task], champion?.tasks[task]];
  // One table per kind of head: binary and regression heads share no metric.
  const binary = tasks.filter((t) =>
    metricsOf(t).some((m) => m?.auc !== undefined || m?.logloss !== undefined),
  );
  const other = tasks.filter((t) => !binary.includes(t));
  const a = candidate?.ranking?.ndcg10;
  const b = champion?.ranking?.ndcg10;
  const ranking =
    a !== undefined || b !== undefined
      ? `<p>NDCG@10 within groups (fused score, each model's default fusion weights): candidate ${fmt(a)}, champion ${fmt(b)} ${deltaText(a, b, "higher")}</p>`
      : "";
  return [binary, other]
    .filter((group) => group.length > 0)
    .map((group) => taskTable(pair, group))
    .join("\n")
    .concat(ranking);
}

/** Candidate, champion and Δ for every metric any of `tasks` has; rows counted once. */
function taskTable(pair: Pair, tasks: readonly string[]): string {
  const { candidate, champion } = pair;
  const all = tasks.flatMap((t) => [candidate?.tasks[t], champion?.tasks[t]]);
  const columns = METRICS.filter(([key]) => all.some((m) => m?.[key] !== undefined));
  const head = `<tr><th>task</th>${columns.map(([, name]) => `<th>${name}<br>candidate</th><th>${name}<br>champion</th><th>Δ</th>`).join("")}<th>rows</th></tr>`;
  const rows = tasks.map((task) => {
    const x = candidate?.tasks[task];
    const y = champion?.tasks[task];
    const cells = columns
      .map(
        ([key, , better]) =>
          `<td>${fmt(x?.[key])}</td><td>${fmt(y?.[key])}</td>${deltaCell(x?.[key], y?.[key], better)}`,
      )
      .join("");
    return `<tr><td>${escapeHtml(task)}</td>${cells}<td>${x?.count ?? y?.count ?? "-"}</td></tr>`;
  });
  return `<table>${head}${rows.join("")}</table>`;
}

/** candidate − champion, and whether that is better, worse or neither; undefined when either is missing. */
function delta(
  x: number | undefined,
  y: number | undefined,
  better: "higher" | "lower" | "none",
): { text: string; cls: string } | undefined {
  if (x === undefined || y === undefined || !Number.isFinite(x) || !Number.isFinite(y)) return undefined;
  const raw = x - y;
  // A change smaller than the 4 decimals shown reads as none ("0.0000", not "-0.0000").
  const d = Number(raw.toFixed(4)) === 0 ? 0 : raw;
  const cls = better === "none" || d === 0 ? "" : d > 0 === (better === "higher") ? "better" : "worse";
  return { text: `${d > 0 ? "+" : ""}${d.toFixed(4)}`, cls };
}

function deltaCell(
  x: number | undefined,
  y: number | undefined,
  better: "higher" | "lower" | "none",
): string {
  const d = delta(x, y, better);
  return d ? `<td class="${d.cls}">${d.text}</td>` : "<td>-</td>";
}

function deltaText(x: number | undefined, y: number | undefined, better: "higher" | "lower"): string {
  const d = delta(x, y, better);
  return d ? `(Δ <span class="${d.cls}">${d.text}</span>)` : "";
}

function reliabilityCharts(pair: Pair): string {
  const tasks = Object.keys(pair.candidate?.reliability ?? {});
  if (tasks.length === 0) return "";
  const charts = tasks.map((task) => {
    const series = [
      { name: "candidate", color: COLORS[0]!, bins: pair.candidate?.reliability?.[task] },
      { name: "champion", color: COLORS[1]!, bins: pair.champion?.reliability?.[task] },
    ]
      .filter((s) => s.bins && s.bins.length > 0)
      .map((s) => ({
        name: s.name,
        color: s.color,
        points: s.bins!.map((b) => [b.meanPredicted, b.observedRate] as [number, number]),
      }));
    const hi = Math.max(1e-6, ...series.flatMap((s) => s.points.flat()));
    const domain: [number, number] = [0, Math.min(1, hi * 1.05)];
    return lineChart(
      `${task}: reliability on the holdout`,
      series,
      "mean predicted probability",
      "observed rate",
      {
        xDomain: domain,
        yDomain: domain,
        diagonal: true,
        width: 300,
        height: 280,
      },
    );
  });
  return `<h2>Calibration</h2>\n<p class="note">Observed rate against mean prediction in equal-mass bins; the dashed diagonal is perfect calibration.</p>\n<div class="charts">${charts.join("\n")}</div>`;
}

function gateSection(gate: GateDecision): string {
  const rows = gate.results
    .map(
      (r) =>
        `<tr><td>${escapeHtml(r.rule)}</td><td>${r.threshold === undefined ? "-" : numberText(r.threshold)}</td><td>${r.value === undefined ? "-" : numberText(r.value)}</td><td class="${r.passed ? "pass" : "fail"}">${r.passed ? "pass" : "FAIL"}</td><td class="l">${escapeHtml(r.detail)}</td></tr>`,
    )
    .join("");
  return `<h2>Gate: ${gate.blessed ? "blessed" : "not blessed"}</h2>
<table><tr><th>rule</th><th>threshold</th><th>value</th><th>result</th><th>detail</th></tr>${rows}</table>`;
}

function driftSection(drift: NonNullable<RunRecord["drift"]>): string {
  if (drift.skipped) return `<h2>Drift</h2><p>${escapeHtml(drift.skipped)}</p>`;
  const worst = [...drift.findings].sort(
    (a, b) => levelRank(b.level) - levelRank(a.level) || b.value - a.value,
  );
  const rows = worst
    .slice(0, 40)
    .map(
      (f) =>
        `<tr><td>${escapeHtml(f.subject)}</td><td>${f.measure}</td><td>${numberText(f.value)}</td><td class="${f.level === "ok" ? "pass" : "fail"}">${f.level}</td></tr>`,
    )
    .join("");
  return `<h2>Drift against the champion's training data: ${drift.level}</h2>
<table><tr><th>subject</th><th>measure</th><th>value</th><th>level</th></tr>${rows}</table>${worst.length > 40 ? `<p class="note">${worst.length - 40} more findings in record.json</p>` : ""}`;
}

function levelRank(level: "ok" | "warn" | "stop"): number {
  return level === "stop" ? 2 : level === "warn" ? 1 : 0;
}

function dataSection(data: NonNullable<RunRecord["data"]>): string {
  const files = data.files
    .map(
      (f) =>
        `<tr><td>${escapeHtml(f.source ?? f.path)}</td><td>${f.rows ?? ""}</td><td>${f.bytes}</td><td class="l">${f.sha256}</td></tr>`,
    )
    .join("");
  const before = data.publishedBefore
    ? `<p class="note">Published before by run ${escapeHtml(data.publishedBefore.runId)} (${escapeHtml(data.publishedBefore.prefix)}).</p>`
    : data.partlyPublishedBefore
      ? `<p class="note">Partly trained on before: ${data.partlyPublishedBefore
          .map(
            (p) =>
              `${escapeHtml(p.path)}${p.bytesBefore !== undefined ? ` (its first ${p.bytesBefore} bytes)` : ""} by run ${escapeHtml(p.runId)}`,
          )
          .join("; ")}.</p>`
      : "";
  const skipped = Object.entries(data.skipped)
    .map(([why, n]) => `${escapeHtml(why)}: ${n}`)
    .join("; ");
  const overlap = data.holdoutOverlap;
  const shared = overlap
    ? `; ${overlap.holdoutRowsInData} of the holdout's ${overlap.holdoutRows} rows are also in it (${numberText(overlap.share * 100)}%)`
    : "";
  return `<h2>Data</h2>
<p>${data.rowsRead} rows read, ${data.rowsSkipped} skipped${skipped ? ` (${skipped})` : ""}${shared}</p>
<table><tr><th>file</th><th>rows</th><th>bytes</th><th>sha256</th></tr>${files}</table>${before}`;
}

function stepsSection(steps: readonly StepRecord[]): string {
  if (steps.length === 0) return "";
  const rows = steps
    .map(
      (s) =>
        `<tr><td>${escapeHtml(s.step)}</td><td>${s.seconds.toFixed(1)}</td><td class="${s.ok ? "pass" : "fail"}">${s.ok ? "ok" : "failed"}</td><td class="l">${escapeHtml(s.detail)}</td></tr>`,
    )
    .join("");
  return `<h2>Steps</h2><table><tr><th>step</th><th>seconds</th><th></th><th>detail</th></tr>${rows}</table>`;
}

function numberText(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  return Number.isInteger(x) ? String(x) : String(Number(x.toPrecision(5)));
}
