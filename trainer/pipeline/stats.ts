/**
 * Per-feature statistics of a data set (contracts.ts DataStats), saved beside a model as
 * data-stats.json so the next night's data can be compared with what the champion was trained on
 * (./drift.ts). Gathered in one streaming pass over rows that passed the spec's checks:
 *
 *   numeric            decile edges of the present values, the share of present values per bin,
 *                      the share of rows where the value is missing
 *   categorical        the shares of the TOP_CATEGORIES most frequent categories among present
 *                      values, the rest in `other`, the share of rows where it is missing
 *   multi_categorical  as categorical over the bag's elements (a row of three values counts three
 *                      times); `missing` is the share of rows with an empty bag
 *   vector             left out: an embedding's coordinates have no per-value meaning to bin, and
 *                      a vector's drift shows in the model's scores, which the gate compares
 *   labels             per task, over the rows that have its label: the positive share (binary)
 *                      or the mean (regression, of the label as trained: after log1p if the spec
 *                      transforms it)
 *
 * Memory: a numeric feature keeps its present values in a Float64Array (8 bytes a value) up to
 * NUMERIC_SAMPLE values, then a seeded reservoir sample of that size, so its deciles are exact up
 * to about a million rows and a close estimate past that; a categorical feature counts exactly up
 * to CATEGORY_CAP distinct values, then keeps the most frequent half whenever it reaches the cap
 * (an id-like feature's top categories are then slight undercounts, and `other` takes the rest).
 */

import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { bucketIndex } from "../../shared/encoder/encode.ts";
import { categoriesOf, categoryOf, numberOf, type ValueRules } from "../../shared/encoder/values.ts";
import { type DatasetSpec, defaultSeparator } from "../../shared/spec.ts";
import { mulberry32 } from "../core/rng.ts";
import { ColumnError, recordChecker } from "../data/check-record.ts";
import { DataError, type RawRecord } from "../data/read-rows.ts";
import type { DataStats, FeatureStats } from "./contracts.ts";
import { checkData } from "./data.ts";

/** Categories listed by name per categorical feature; the rest are summed in `other`. */
export const TOP_CATEGORIES = 50;
/** Present values a numeric feature keeps for its deciles before it samples (2^20, 8 MiB). */
export const NUMERIC_SAMPLE = 1 << 20;
/** Distinct categories a feature counts exactly before the rarest half are dropped. */
export const CATEGORY_CAP = 1 << 16;
/** The file name the stats have beside a model. */
export const DATA_STATS_FILE = "data-stats.json";

/** Gathers DataStats one row at a time. */
export interface StatsCollector {
  /** Adds a row that passed the spec's checks, with its labels (spec.tasks order, NaN: none). */
  add(record: RawRecord, labels: readonly number[]): void;
  /**
   * The stats of the rows added so far. With `reference`, numeric features are binned on the
   * reference's edges and categorical ones list the reference's categories besides their own top
   * ones, so driftReport compares like with like; without, on the data's own deciles (the stats to
   * save beside a model trained on this data). Both may be asked of one collector.
   */
  finish(reference?: DataStats): DataStats;
}

/** A collector for the spec's features and tasks. */
export function statsCollector(spec: DatasetSpec): StatsCollector {
  const rules: ValueRules = { trim: spec.trim, missing: new Set(spec.missing) };
  const features = spec.features.flatMap((f): FeatureCollector[] => {
    if (f.type === "numeric") return [numericCollector(f.name, rules)];
    if (f.type === "categorical") return [categoricalCollector(f.name, (v) => single(categoryOf(v, rules)))];
    if (f.type === "multi_categorical") {
      const separator = f.separator ?? defaultSeparator("multi_categorical");
      return [categoricalCollector(f.name, (v) => categoriesOf(v, separator, rules))];
    }
    return [];
  });
  const sums = spec.tasks.map(() => 0);
  const counts = spec.tasks.map(() => 0);
  let rows = 0;
  return {
    add(record, labels) {
      rows++;
      for (const f of features) f.add(record[f.name]);
      labels.forEach((y, t) => {
        if (Number.isNaN(y)) return;
        sums[t]! += y;
        counts[t]!++;
      });
    },
    finish(reference) {
      return {
        rows,
        features: Object.fromEntries(
          features.map((f) => [f.name, f.finish(rows, reference?.features[f.name])]),
        ),
        labels: Object.fromEntries(
          spec.tasks.map((task, t) => [
            task.name,
            { rate: counts[t]! > 0 ? sums[t]! / counts[t]! : 0, labelled: counts[t]! },
          ]),
        ),
      };
    },
  };
}

/** Where dataStats reads rows from: data files (read and checked as checkData does) or records. */
export type StatsSource = readonly string[] | Iterable<RawRecord> | AsyncIterable<RawRecord>;

/** Options of dataStats. */
export interface DataStatsOptions {
  /** Bin numeric features on these stats' edges and list their categories too (see StatsCollector.finish). */
  reference?: DataStats;
  /** For files: bad rows to skip before failing (default: no limit; the stats cover the good rows). */
  maxBadRows?: number;
}

/**
 * DataStats of files (an array of paths, read as checkData reads them) or of records in memory or
 * streamed (an empty array is no records). Either way only rows that pass the spec's checks
 * count (a bad row would not be trained on either), and the rows are seen once and not kept.
 */
export async function dataStats(
  source: StatsSource,
  spec: DatasetSpec,
  options: DataStatsOptions = {},
): Promise<DataStats> {
  const collector = statsCollector(spec);
  if (isFileList(source)) {
    await checkData(source, spec, {
      maxBadRows: options.maxBadRows ?? Number.POSITIVE_INFINITY,
      onRow: (record, labels) => collector.add(record, labels),
    });
    return collector.finish(options.reference);
  }
  // Records may lack keys for absent values, as JSON lines do: check them as such.
  const checker = recordChecker("rows", { ...spec, format: "jsonl" });
  let line = 0;
  for await (const record of source) {
    line++;
    let labels: number[];
    try {
      labels = checker.check({ record, line });
    } catch (error) {
      if (!(error instanceof DataError) || error instanceof ColumnError) throw error;
      continue;
    }
    collector.add(record, labels);
  }
  return collector.finish(options.reference);
}

function isFileList(source: StatsSource): source is readonly string[] {
  return Array.isArray(source) && source.length > 0 && source.every((s) => typeof s === "string");
}

/** Writes `stats` as DIR/data-stats.json (through a temporary file, so a reader never sees half). */
export async function writeDataStats(dir: string, stats: DataStats): Promise<string> {
  await mkdir(dir, { recursive: true });
  const path = join(dir, DATA_STATS_FILE);
  const temporary = `${path}.${process.pid}.tmp`;
  await writeFile(temporary, `${JSON.stringify(stats, null, 1)}\n`);
  await rename(temporary, path);
  return path;
}

/**
 * DIR/data-stats.json, or undefined when the directory has none (a model published before the
 * pipeline kept stats: drift is then not checked). A file that is there but unreadable or not
 * DataStats is an error naming it: silently skipping the drift check would hide it.
 */
export async function readDataStats(dir: string): Promise<DataStats | undefined> {
  const path = join(dir, DATA_STATS_FILE);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new DataError(`${path}: not valid JSON`);
  }
  const problem = dataStatsProblem(json);
  if (problem) throw new DataError(`${path}: ${problem}`);
  return json as DataStats;
}

/** Why `json` is not DataStats, or undefined when it is. Own keys only: a category may be named "constructor". */
function dataStatsProblem(json: unknown): string | undefined {
  const isObject = (x: unknown): x is Record<string, unknown> =>
    x !== null && typeof x === "object" && !Array.isArray(x);
  const isNumber = (x: unknown): x is number => typeof x === "number" && Number.isFinite(x);
  const numbers = (x: unknown): boolean => Array.isArray(x) && x.every(isNumber);
  if (!isObject(json)) return "expected an object";
  if (!isNumber(json.rows)) return "rows: expected a number";
  if (!isObject(json.features)) return "features: expected an object";
  for (const [name, f] of Object.entries(json.features)) {
    const at = `features.${name}`;
    if (!isObject(f)) return `${at}: expected an object`;
    if (!isNumber(f.missing)) return `${at}.missing: expected a number`;
    if (f.kind === "numeric") {
      if (!numbers(f.edges)) return `${at}.edges: expected numbers`;
      if (!numbers(f.shares) || (f.shares as number[]).length !== (f.edges as number[]).length + 1)
        return `${at}.shares: expected one number per bin (edges + 1)`;
    } else if (f.kind === "categorical") {
      if (!isObject(f.shares) || !Object.values(f.shares).every(isNumber))
        return `${at}.shares: expected numbers by category`;
      if (!isNumber(f.other)) return `${at}.other: expected a number`;
    } else return `${at}.kind: expected "numeric" or "categorical"`;
  }
  if (!isObject(json.labels)) return "labels: expected an object";
  for (const [task, l] of Object.entries(json.labels)) {
    if (!isObject(l) || !isNumber(l.rate) || !isNumber(l.labelled))
      return `labels.${task}: expected { rate, labelled }`;
  }
  return undefined;
}

interface FeatureCollector {
  name: string;
  add(value: unknown): void;
  finish(rows: number, reference: FeatureStats | undefined): FeatureStats;
}

function single(key: string | null): string[] {
  return key === null ? [] : [key];
}

function numericCollector(name: string, rules: ValueRules): FeatureCollector {
  let values = new Float64Array(1024);
  let stored = 0;
  let present = 0;
  let missing = 0;
  // Seeded, so the same data gives the same stats (and the same data-stats.json) every run.
  const random = mulberry32(0x9e3779b9);
  return {
    name,
    add(value) {
      const x = numberOf(value, rules);
      // NaN (present but not a number) cannot reach here from checked rows; count it as missing.
      if (x === null || Number.isNaN(x)) {
        missing++;
        return;
      }
      present++;
      if (stored < NUMERIC_SAMPLE) {
        if (stored === values.length) {
          const grown = new Float64Array(Math.min(values.length * 2, NUMERIC_SAMPLE));
          grown.set(values);
          values = grown;
        }
        values[stored++] = x;
        return;
      }
      // Reservoir sampling (Algorithm R): every value seen so far is kept with equal chance.
      const j = Math.floor(random() * present);
      if (j < NUMERIC_SAMPLE) values[j] = x;
    },
    finish(rows, reference) {
      const sorted = values.slice(0, stored).sort();
      const edges = reference?.kind === "numeric" ? reference.edges : deciles(sorted);
      const shares: number[] = [];
      let below = 0;
      for (const edge of edges) {
        const upTo = bucketIndex(sorted, edge);
        shares.push(sorted.length > 0 ? (upTo - below) / sorted.length : 0);
        below = upTo;
      }
      shares.push(sorted.length > 0 ? (sorted.length - below) / sorted.length : 0);
      return { kind: "numeric", edges: [...edges], shares, missing: rows > 0 ? missing / rows : 0 };
    },
  };
}

/**
 * The distinct values among the 10%..90% quantiles (the smallest value with at least that share
 * of values at or below it): actual data values, so an integer feature gets integer edges, and
 * bins (e_i, e_i+1] never collapse to nothing because of a repeated edge.
 */
function deciles(sorted: Float64Array): number[] {
  const edges: number[] = [];
  if (sorted.length === 0) return edges;
  for (let k = 1; k < 10; k++) {
    const edge = sorted[Math.max(0, Math.ceil((k / 10) * sorted.length) - 1)]!;
    if (edges.length === 0 || edge > edges[edges.length - 1]!) edges.push(edge);
  }
  return edges;
}

function categoricalCollector(name: string, keysOf: (value: unknown) => string[]): FeatureCollector {
  const counts = new Map<string, number>();
  let present = 0;
  let missing = 0;
  return {
    name,
    add(value) {
      const keys = keysOf(value);
      if (keys.length === 0) missing++;
      for (const key of keys) {
        present++;
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
      if (counts.size >= CATEGORY_CAP) {
        // Keep the most frequent half: a category rare enough to be dropped now cannot reach
        // the top TOP_CATEGORIES unless it is frequent later, when it is counted again.
        const kept = [...counts].sort(byCount).slice(0, CATEGORY_CAP / 2);
        counts.clear();
        for (const [key, count] of kept) counts.set(key, count);
      }
    },
    finish(rows, reference) {
      const listed = [...counts].sort(byCount).slice(0, TOP_CATEGORIES);
      if (reference?.kind === "categorical") {
        // The reference's categories too, so drift reads this data's share of each exactly.
        const have = new Set(listed.map(([key]) => key));
        for (const key of Object.keys(reference.shares))
          if (!have.has(key)) listed.push([key, counts.get(key) ?? 0]);
      }
      let listedCount = 0;
      for (const [, count] of listed) listedCount += count;
      return {
        kind: "categorical",
        // fromEntries defines own properties: a category named "__proto__" stays a category.
        shares: Object.fromEntries(listed.map(([key, count]) => [key, present > 0 ? count / present : 0])),
        other: present > 0 ? Math.max(0, present - listedCount) / present : 0,
        missing: rows > 0 ? missing / rows : 0,
      };
    },
  };
}

/** Most frequent first; ties by key, so the list does not depend on the order rows came in. */
function byCount(a: [string, number], b: [string, number]): number {
  return b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);
}
