/**
 * How far the new data has moved from the champion's training data (contracts.ts DriftReport),
 * from the two DataStats (./stats.ts). Per feature the champion's distribution is the reference:
 *
 *   numeric      psi     over the champion's decile bins plus a "missing" bin
 *   categorical  psi     over the champion's listed categories plus "missing", and plus "other"
 *                        when the champion had a tail (other > UNSEEN_OTHER_MAX); with no tail,
 *                        new categories are left to `unseen` and the new data's shares are taken
 *                        over its known categories (renormalised), so a few new values do not
 *                        read as a shift of the old ones
 *                js      Jensen-Shannon divergence (base 2) over every bin (categories, other,
 *                        missing): bounded by 1 and needs no epsilon, where PSI of a category
 *                        one side lacks rests on the epsilon
 *                unseen  the share of the new data's present values outside the champion's
 *                        listed categories, beyond the share the champion itself had outside
 *                        them (its `other`): max(0, new outside - champion other). With a
 *                        champion whose list covered everything (other ~0, the usual case for
 *                        up to TOP_CATEGORIES categories) this is exactly the share of values
 *                        the champion never saw. Judged only then: for an id-like feature with
 *                        a long tail the stats cannot tell a new id from a tail id, and the
 *                        tail's share moves by sampling alone (a flood into the tail still
 *                        shows in psi's "other" bin)
 *   both         psi and js read categories under RARE_SHARE on both sides as one bin, so the
 *                many tiny bins of an id-like feature do not add up sampling noise
 *   label        rate    binary: current - champion positive rate, signed (absolute change);
 *                        regression (given options.tasks): the mean's change relative to the
 *                        champion's, (current - champion) / |champion|, as a mean's absolute
 *                        change has the label's units (a log1p dwell time moves by 0.03 between
 *                        two samples of the same days, a click rate by 0.003); the size is judged
 *
 * The `missing` bin makes a feature that stops arriving (a broken join upstream) a shift too.
 * Exact when `current` was made with the champion's stats as reference (prepare.ts
 * statsOnReference, dataStats's `reference`); otherwise numeric bins are re-binned from the
 * current deciles by linear interpolation and categories the current lists fewer of count as
 * `other`, an estimate. Features or tasks only one side has, and tasks without labelled rows on
 * either side, have no finding (a masked task may have no labels yet).
 */
import type { TaskSpec } from "../../shared/spec.ts";
import type { DriftThresholds } from "./config.ts";
import type { DataStats, DriftFinding, DriftReport, FeatureStats } from "./contracts.ts";

/** Empty bins count as this share in PSI (its logarithm is otherwise infinite). */
export const PSI_EPSILON = 1e-4;
/** Categories below this share on both sides share one bin in PSI and JS (see mergeRare). */
export const RARE_SHARE = 0.01;
/** A champion `other` at or below this share means its category list was (nearly) complete. */
export const UNSEEN_OTHER_MAX = 0.005;

type Level = DriftFinding["level"];
const RANK: Record<Level, number> = { ok: 0, warn: 1, stop: 2 };

/** Options of driftReport. */
export interface DriftOptions {
  /**
   * The spec's tasks, for their types: a regression task's mean is compared relatively (see the
   * module comment). Without them every task is read as binary.
   */
  tasks?: readonly Pick<TaskSpec, "name" | "type">[];
}

/**
 * The findings for every feature and task both stats have, each judged against `thresholds`
 * (pipeline.json drift, defaults config.ts DEFAULT_DRIFT: PSI 0.1 / 0.25, JS 0.05 / 0.15, unseen
 * 0.05 / 0.2, rate 0.02 / 0.1); the report's level is the worst finding's.
 */
export function driftReport(
  champion: DataStats,
  current: DataStats,
  thresholds: DriftThresholds,
  options: DriftOptions = {},
): DriftReport {
  const regression = new Set(options.tasks?.filter((t) => t.type === "regression").map((t) => t.name));
  const findings: DriftFinding[] = [];
  const judge = (subject: string, measure: DriftFinding["measure"], value: number) => {
    const size = Math.abs(value);
    const level: Level = !(size < thresholds.stop[measure])
      ? "stop"
      : size >= thresholds.warn[measure]
        ? "warn"
        : "ok";
    findings.push({ subject, measure, value, level });
  };
  for (const [name, before] of Object.entries(champion.features)) {
    if (!Object.hasOwn(current.features, name)) continue;
    const after = current.features[name]!;
    const subject = `feature:${name}`;
    if (before.kind === "numeric" && after.kind === "numeric") {
      const [p, q] = numericBins(before, after);
      judge(subject, "psi", psi(p, q));
    } else if (before.kind === "categorical" && after.kind === "categorical") {
      const c = categoricalBins(before, after);
      judge(subject, "psi", psi(c.psi[0], c.psi[1]));
      judge(subject, "js", jensenShannon(c.all[0], c.all[1]));
      // With a tail (values the champion's stats did not list), a new value cannot be told from
      // a tail value, and the tail's share moves by sampling alone: unseen is judged only when the
      // champion's list was complete.
      if (before.other <= UNSEEN_OTHER_MAX) judge(subject, "unseen", c.unseen);
    }
  }
  for (const [task, before] of Object.entries(champion.labels)) {
    if (!Object.hasOwn(current.labels, task)) continue;
    const after = current.labels[task]!;
    if (before.labelled === 0 || after.labelled === 0) continue;
    const change = after.rate - before.rate;
    // A champion mean of exactly 0 gives no scale to divide by: the change is then taken as it is.
    const relative = regression.has(task) && before.rate !== 0;
    judge(`label:${task}`, "rate", relative ? change / Math.abs(before.rate) : change);
  }
  const level = findings.reduce<Level>((worst, f) => (RANK[f.level] > RANK[worst] ? f.level : worst), "ok");
  return { findings, level };
}

/**
 * Population stability index, sum of (q - p) ln(q / p) over bins, with empty bins at
 * PSI_EPSILON. The usual reading: under 0.1 stable, 0.1 to 0.25 a moderate shift, above a large one.
 */
export function psi(p: readonly number[], q: readonly number[]): number {
  let sum = 0;
  for (let i = 0; i < p.length; i++) {
    const a = Math.max(p[i]!, PSI_EPSILON);
    const b = Math.max(q[i]!, PSI_EPSILON);
    sum += (b - a) * Math.log(b / a);
  }
  return sum;
}

/** Jensen-Shannon divergence in bits (0: the same, 1: no overlap) of two distributions over the same bins. */
export function jensenShannon(p: readonly number[], q: readonly number[]): number {
  let sum = 0;
  for (let i = 0; i < p.length; i++) {
    const a = p[i]!;
    const b = q[i]!;
    const m = (a + b) / 2;
    if (a > 0) sum += a * Math.log2(a / m);
    if (b > 0) sum += b * Math.log2(b / m);
  }
  // Rounding can leave a hair below zero for identical inputs.
  return Math.max(0, sum / 2);
}

/** Both distributions over the champion's bins, the last bin "missing"; each sums to 1. */
function numericBins(
  before: Extract<FeatureStats, { kind: "numeric" }>,
  after: Extract<FeatureStats, { kind: "numeric" }>,
): [number[], number[]] {
  const present = (shares: readonly number[], missing: number) => [
    ...shares.map((s) => s * (1 - missing)),
    missing,
  ];
  const shares = sameEdges(before.edges, after.edges) ? after.shares : rebin(after, before.edges);
  return [present(before.shares, before.missing), present(shares, after.missing)];
}

function sameEdges(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * `stats`' shares on other edges, from its cumulative shares at its own edges: linear in between,
 * and past the first and last edge extended with the slope of the nearest inner bin (the tails'
 * extent is unknown; deciles' outer bins are about as wide as their neighbours). An estimate.
 */
function rebin(stats: Extract<FeatureStats, { kind: "numeric" }>, edges: readonly number[]): number[] {
  const own = stats.edges;
  const n = own.length;
  const sum = stats.shares.reduce((a, b) => a + b, 0);
  const cumulative: number[] = [];
  let total = 0;
  for (let i = 0; i < n; i++) {
    total += stats.shares[i]!;
    cumulative.push(total);
  }
  const slope = (k: number) => (cumulative[k + 1]! - cumulative[k]!) / (own[k + 1]! - own[k]!);
  const cdf = (x: number): number => {
    if (n === 0) return 0;
    if (x < own[0]!) return n > 1 ? Math.max(0, cumulative[0]! + (x - own[0]!) * slope(0)) : 0;
    if (x >= own[n - 1]!) {
      if (x === own[n - 1]!) return cumulative[n - 1]!;
      return n > 1 ? Math.min(sum, cumulative[n - 1]! + (x - own[n - 1]!) * slope(n - 2)) : sum;
    }
    let k = 0;
    while (own[k + 1]! <= x) k++;
    return cumulative[k]! + (x - own[k]!) * slope(k);
  };
  const shares: number[] = [];
  let below = 0;
  for (const edge of edges) {
    const upTo = Math.max(below, cdf(edge));
    shares.push(upTo - below);
    below = upTo;
  }
  shares.push(Math.max(0, sum - below));
  return shares;
}

interface CategoricalBins {
  /** The bins PSI reads (see the module comment), champion then current. */
  psi: [number[], number[]];
  /** Every bin: the champion's categories, other, missing. */
  all: [number[], number[]];
  unseen: number;
}

function categoricalBins(
  before: Extract<FeatureStats, { kind: "categorical" }>,
  after: Extract<FeatureStats, { kind: "categorical" }>,
): CategoricalBins {
  // Maps of own entries: a category named "constructor" must not read Object.prototype's.
  const afterShares = new Map(Object.entries(after.shares));
  const keys = Object.keys(before.shares);
  const p = keys.map((k) => before.shares[k]! * (1 - before.missing));
  let known = 0;
  const q = keys.map((k) => {
    const share = afterShares.get(k) ?? 0;
    known += share;
    return share * (1 - after.missing);
  });
  // The new data's present values outside the champion's list (its other included).
  const outside = Math.max(0, 1 - known);
  const pOther = before.other * (1 - before.missing);
  const qOther = outside * (1 - after.missing);
  const all: [number[], number[]] = [
    [...p, pOther, before.missing],
    [...q, qOther, after.missing],
  ];
  let psiBins: [number[], number[]] = all;
  if (before.other <= UNSEEN_OTHER_MAX) {
    // No tail to compare: take both sides over the known bins, each renormalised to sum to 1.
    const pKnown = [...p, before.missing];
    const qKnown = [...q, after.missing];
    psiBins = [normalised(pKnown), normalised(qKnown)];
  }
  return { psi: mergeRare(psiBins), all: mergeRare(all), unseen: Math.max(0, outside - before.other) };
}

/**
 * Categories under RARE_SHARE on both sides are read as one bin. A feature with hundreds of
 * values (user or item ids) spreads a day over many tiny bins whose shares move by sampling
 * alone: two random halves of one log gave a user id PSI of 0.57 over its 50 listed values. A
 * shift that matters moves mass into or out of the values that carry it, which stays visible.
 */
function mergeRare([p, q]: [number[], number[]]): [number[], number[]] {
  const keptP: number[] = [];
  const keptQ: number[] = [];
  let rareP = 0;
  let rareQ = 0;
  for (let i = 0; i < p.length; i++) {
    if (Math.max(p[i]!, q[i]!) >= RARE_SHARE) {
      keptP.push(p[i]!);
      keptQ.push(q[i]!);
    } else {
      rareP += p[i]!;
      rareQ += q[i]!;
    }
  }
  return rareP + rareQ > 0
    ? [
        [...keptP, rareP],
        [...keptQ, rareQ],
      ]
    : [keptP, keptQ];
}

function normalised(xs: readonly number[]): number[] {
  const sum = xs.reduce((a, b) => a + b, 0);
  // All mass elsewhere (every value new): leave the zeros, PSI's epsilon then reads them.
  return sum > 1e-12 ? xs.map((x) => x / sum) : [...xs];
}

/** Options of formatDrift. */
export interface FormatDriftOptions {
  /** Only subjects with a warn or stop finding (default: every subject, worst first). */
  flaggedOnly?: boolean;
}

/**
 * The report as a short table for the CLI: one line per feature or task with its measures and
 * worst level, stop first, then warn, then ok (each in the report's order), under a summary line.
 */
export function formatDrift(report: DriftReport, options: FormatDriftOptions = {}): string {
  const measures: DriftFinding["measure"][] = ["psi", "js", "unseen", "rate"];
  const subjects = new Map<
    string,
    { level: Level; values: Partial<Record<DriftFinding["measure"], number>> }
  >();
  const counts: Record<Level, number> = { ok: 0, warn: 0, stop: 0 };
  for (const f of report.findings) {
    const row = subjects.get(f.subject) ?? { level: "ok" as Level, values: {} };
    row.values[f.measure] = f.value;
    if (RANK[f.level] > RANK[row.level]) row.level = f.level;
    subjects.set(f.subject, row);
  }
  for (const row of subjects.values()) counts[row.level]++;
  const rows = [...subjects]
    .filter(([, row]) => !options.flaggedOnly || row.level !== "ok")
    .sort((a, b) => RANK[b[1].level] - RANK[a[1].level]);
  const cell = (measure: DriftFinding["measure"], value: number | undefined): string => {
    if (value === undefined) return "-";
    if (measure === "rate") return `${value >= 0 ? "+" : ""}${value.toFixed(4)}`;
    return value.toFixed(3);
  };
  const table = [
    ["subject", ...measures, "level"],
    ...rows.map(([subject, row]) => [subject, ...measures.map((m) => cell(m, row.values[m])), row.level]),
  ];
  const widths = table[0]!.map((_, c) => Math.max(...table.map((r) => r[c]!.length)));
  const lines = table.map((r) =>
    r
      .map((text, c) => (c === 0 || c === r.length - 1 ? text.padEnd(widths[c]!) : text.padStart(widths[c]!)))
      .join("  ")
      .trimEnd(),
  );
  const summary = `drift: ${report.level} (${counts.stop} stop, ${counts.warn} warn, ${counts.ok} ok)`;
  return [summary, ...(rows.length > 0 ? lines : [])].join("\n");
}
