/** Fits the encoder's state (statistics, vocabularies, layout) on training rows. */
import { type DatasetSpec, defaultSeparator } from "../spec.ts";
import type { FeatureValues } from "./encode.ts";
import { fnv1a, hashBucket } from "./hash.ts";
import type { EncoderState, FeatureState, FrequencyColumn, NumericState, TargetColumns } from "./state.ts";
import { ID_FEATURE_ROWS, MISSING_ID, OOV_ID, RESERVED_IDS, TARGET_SMOOTHING } from "./state.ts";
import { ValueStats } from "./value-stats.ts";
import { categoriesOf, categoryOf, numberOf, type ValueRules, VectorValueError, vectorOf } from "./values.ts";

export interface FitOptions {
  /** Default minimum count for a category to get its own embedding row. */
  minCount: number;
  /** Standardised numeric values are clipped to this magnitude. */
  clip: number;
  /** Default number of quantile buckets per numeric feature (0: none). */
  numericBuckets: number;
  /**
   * Bag features without `maxValues`: slots for the most values a training row had, at most
   * this many (each slot costs a gather and a dense column per row).
   */
  maxValues: number;
  /**
   * A categorical feature (without hashBuckets) with more distinct training values than this
   * is hashed into OVERFLOW_HASH_BUCKETS instead: counting every value of an id column with tens
   * of millions of values would need gigabytes, and most of them are seen once anyway.
   */
  maxDistinct: number;
}

export const DEFAULT_FIT_OPTIONS: FitOptions = {
  minCount: 2,
  clip: 8,
  numericBuckets: 16,
  maxValues: 8,
  maxDistinct: 1_000_000,
};

/** Hash buckets for a categorical feature that outgrew maxDistinct (2^20). */
export const OVERFLOW_HASH_BUCKETS = 1 << 20;

/**
 * The most hash buckets whose frequency and target columns are on by default: the manifest
 * carries a count and a rate per task for every bucket (about 25 bytes each with two tasks), so
 * 131,072 buckets add about 3 MB to it. Past this, `"frequency": true` and `"targetEncoding":
 * true` still turn them on.
 */
export const BUCKET_COLUMNS_MAX_BUCKETS = 1 << 17;

/** A hashed feature's derived columns by default: id-like (as a vocabulary), and not too many buckets. */
function bucketColumnsByDefault(buckets: number): boolean {
  return RESERVED_IDS + buckets > ID_FEATURE_ROWS && buckets <= BUCKET_COLUMNS_MAX_BUCKETS;
}

/** The key a hashed feature's statistics keep for `key`: its bucket, as the encoder computes it. */
function bucketKey(key: string, buckets: number): string {
  return String(hashBucket(key, buckets));
}

/**
 * Fits on an array of rows. For data that does not fit in memory, feed rows one at a time to
 * startFit: the statistics are streaming (Welford moments, a bounded reservoir for quantiles,
 * a count per distinct category).
 */
export function fitEncoder(
  spec: DatasetSpec,
  rows: Iterable<FeatureValues>,
  options: FitOptions = DEFAULT_FIT_OPTIONS,
  labels?: readonly (readonly number[])[],
): EncoderState {
  const fit = startFit(spec, options);
  let i = 0;
  for (const row of rows) fit.add(row, labels?.[i++]);
  return fit.finish();
}

export interface EncoderFit {
  /**
   * One training row, with its labels in spec.tasks order (binary 0/1, NaN where missing) when
   * the encoder is to have target columns; rows without labels leave them out.
   */
  add(row: FeatureValues, labels?: ArrayLike<number>): void;
  finish(): EncoderState;
  /** Categorical features hashed because they outgrew maxDistinct (valid after finish). */
  hashed(): string[];
}

/**
 * Quantile buckets are cut from a uniform sample of at most this many values per feature
 * (exact below it): a 1/√n error in the cut ranks, far below what a 16-bucket split can notice.
 */
export const QUANTILE_SAMPLE = 200_000;

export function startFit(spec: DatasetSpec, options: FitOptions = DEFAULT_FIT_OPTIONS): EncoderFit {
  const rules: ValueRules = { trim: spec.trim, missing: new Set(spec.missing) };
  const numeric = spec.features
    .filter((f) => f.type === "numeric")
    .map((f) => ({
      name: f.name,
      moments: new Moments(),
      sample: new Reservoir(QUANTILE_SAMPLE, fnv1a(f.name)),
    }));
  const binary = spec.tasks.flatMap((t, i) => (t.type === "binary" ? [i] : []));
  // Values by their own key, or a hashed feature's by its bucket (when it may get derived columns).
  const categorical = spec.features.flatMap((f) => {
    if (f.type !== "categorical") return [];
    const buckets = f.hashBuckets;
    const byDefault = buckets !== undefined && bucketColumnsByDefault(buckets);
    if (buckets !== undefined && !(f.frequency ?? byDefault) && !(f.targetEncoding ?? byDefault)) return [];
    return [
      {
        name: f.name,
        buckets,
        counts: new ValueStats(f.targetEncoding !== false ? binary : []) as ValueStats | undefined,
      },
    ];
  });
  const vectors = spec.features.flatMap((f) =>
    f.type === "vector" && (f.scaling ?? "standard") === "standard"
      ? [
          {
            name: f.name,
            dim: f.dim,
            separator: f.separator ?? defaultSeparator("vector"),
            moments: new ElementMoments(f.dim),
          },
        ]
      : [],
  );
  const overflowed: string[] = [];
  let rows = 0;
  const bags = spec.features
    .filter((f) => f.type === "multi_categorical")
    .map((f) => ({
      name: f.name,
      separator: f.separator ?? defaultSeparator("multi_categorical"),
      counts: f.hashBuckets === undefined ? new ValueStats() : undefined,
      longest: 0,
    }));
  return {
    add(row, labels) {
      rows++;
      for (const f of numeric) {
        const x = numberOf(row[f.name], rules);
        if (x === null || Number.isNaN(x)) continue;
        f.moments.add(x);
        f.sample.add(x);
      }
      for (const f of categorical) {
        const key = categoryOf(row[f.name], rules);
        if (!f.counts) continue;
        if (f.buckets !== undefined) {
          f.counts.add(key === null ? null : bucketKey(key, f.buckets), labels);
          continue;
        }
        f.counts.add(key, labels);
        if (f.counts.size > options.maxDistinct) {
          f.counts = undefined; // hashed from here on: stop spending memory on it
          overflowed.push(f.name);
        }
      }
      for (const f of bags) {
        const keys = categoriesOf(row[f.name], f.separator, rules);
        if (keys.length > f.longest) f.longest = keys.length;
        if (f.counts) for (const key of keys) f.counts.add(key);
      }
      for (const f of vectors) {
        let x: number[] | null;
        try {
          x = vectorOf(row[f.name], f.dim, f.separator, rules);
        } catch (error) {
          // Encoding the row reports it, with its file and line (trainer/data/check-record.ts).
          if (error instanceof VectorValueError) continue;
          throw error;
        }
        if (x) f.moments.add(x);
      }
    },
    finish() {
      const stats: FitStats = {
        numeric: new Map(numeric.map((f) => [f.name, f])),
        counts: new Map([
          ...categorical.flatMap((f) => (f.counts ? [[f.name, f.counts] as const] : [])),
          ...bags.flatMap((f) => (f.counts ? [[f.name, f.counts] as const] : [])),
        ]),
        longest: new Map(bags.map((f) => [f.name, f.longest])),
        vectors: new Map(vectors.map((f) => [f.name, f.moments])),
        rows,
      };
      return layout(spec, options, stats);
    },
    hashed: () => [...overflowed],
  };
}

interface FitStats {
  numeric: Map<string, { moments: Moments; sample: Reservoir }>;
  /** Categorical and bag features with a vocabulary: their values' counts (and label sums). */
  counts: Map<string, ValueStats>;
  /** Bag features: the most values one training row had. */
  longest: Map<string, number>;
  /** Vector features scaled "standard": each element's moments over the rows that had the vector. */
  vectors: Map<string, ElementMoments>;
  /** Training rows seen. */
  rows: number;
}

function layout(spec: DatasetSpec, options: FitOptions, stats: FitStats): EncoderState {
  const features: FeatureState[] = [];
  let denseSize = 0;
  let idSlots = 0;
  let vocabSize = 0;
  for (const f of spec.features) {
    if (f.type === "numeric") {
      const { moments, sample } = stats.numeric.get(f.name)!;
      const values = sample.values();
      const range = trainingRange(values);
      // Where the range clips, the statistics are those of the clipped values (from the sample,
      // exact up to QUANTILE_SAMPLE values), so one extreme value cannot stretch the scale.
      const clips = range !== undefined && values.some((x) => x < range[0] || x > range[1]);
      const clipped = clips ? clippedMoments(values, range) : moments;
      const numeric: NumericState = {
        kind: "numeric",
        name: f.name,
        side: f.side,
        mean: clipped.mean(),
        std: clipped.std(),
        clip: options.clip,
        denseOffset: denseSize,
        ...(range ? { range } : {}),
        ...seenOnly(moments.count, stats.rows),
      };
      denseSize += 2;
      const boundaries = quantileBoundaries(sample.values(), f.buckets ?? options.numericBuckets);
      if (boundaries.length > 0) {
        const size = 2 + boundaries.length; // missing + (boundaries + 1) buckets
        numeric.buckets = { slot: idSlots++, offset: vocabSize, size, boundaries };
        vocabSize += size;
      }
      features.push(numeric);
    } else if (f.type === "categorical") {
      const base = {
        kind: "categorical" as const,
        name: f.name,
        side: f.side,
        slot: idSlots++,
        offset: vocabSize,
      };
      const counts = stats.counts.get(f.name);
      const hashBuckets = f.hashBuckets ?? (counts ? undefined : OVERFLOW_HASH_BUCKETS);
      const vocab =
        hashBuckets === undefined ? vocabulary(counts!, f.minCount ?? options.minCount) : undefined;
      const size = RESERVED_IDS + (vocab ? vocab.length : hashBuckets!);
      // Derived columns need the rows' statistics: by value, or by bucket for a hashed feature
      // (absent for one hashed because it outgrew maxDistinct, and when they are off).
      const byDefault = vocab ? size > ID_FEATURE_ROWS : bucketColumnsByDefault(hashBuckets!);
      const withFrequency = counts !== undefined && (f.frequency ?? byDefault);
      const withTarget = counts?.labelled === true && (f.targetEncoding ?? byDefault);
      // The counts and label sums by local id, looked up once for both kinds of column.
      const keys = vocab ?? Array.from({ length: hashBuckets! }, (_, b) => String(b));
      const selected = withFrequency || withTarget ? counts!.select(keys) : undefined;
      const frequency = withFrequency
        ? frequencyColumn(selected!.counts, stats.rows, denseSize++)
        : undefined;
      const target = withTarget ? targetColumns(spec, selected!, counts!, stats.rows, denseSize) : undefined;
      if (target) denseSize += target.tasks.length;
      features.push({
        ...base,
        size,
        ...(vocab ? { vocab } : { hashBuckets: hashBuckets! }),
        ...(frequency ? { frequency } : {}),
        ...(target ? { target } : {}),
      });
      vocabSize += size;
    } else if (f.type === "multi_categorical") {
      const maxValues = f.maxValues ?? Math.max(1, Math.min(options.maxValues, stats.longest.get(f.name)!));
      const vocab =
        f.hashBuckets === undefined
          ? vocabulary(stats.counts.get(f.name)!, f.minCount ?? options.minCount)
          : undefined;
      const size = RESERVED_IDS + (vocab ? vocab.length : f.hashBuckets!);
      features.push({
        kind: "multi_categorical",
        name: f.name,
        side: f.side,
        separator: f.separator ?? defaultSeparator("multi_categorical"),
        slot: idSlots,
        maxValues,
        denseOffset: denseSize,
        offset: vocabSize,
        size,
        ...(vocab ? { vocab } : { hashBuckets: f.hashBuckets! }),
      });
      idSlots += maxValues;
      denseSize += maxValues;
      vocabSize += size;
    } else {
      const moments = stats.vectors.get(f.name);
      features.push({
        kind: "vector",
        name: f.name,
        side: f.side,
        dim: f.dim,
        separator: f.separator ?? defaultSeparator("vector"),
        denseOffset: denseSize,
        ...(moments
          ? {
              mean: moments.mean(),
              std: moments.std(),
              clip: options.clip,
              ...seenOnly(moments.count, stats.rows),
            }
          : {}),
      });
      denseSize += f.dim + 1;
    }
  }
  // Version 2 only where it is needed: a model without scaled vectors stays readable by workers
  // from before vectors were scaled, and one with them is refused there instead of served wrong.
  const version = features.some((f) => f.kind === "vector" && f.mean) ? 2 : 1;
  return { version, trim: spec.trim, missing: [...spec.missing], features, denseSize, idSlots, vocabSize };
}

/** Below this many values there is no tail to clip: the quantiles are the extremes. */
const MIN_VALUES_FOR_RANGE = 1000;
export const OUTLIER_QUANTILES: readonly [number, number] = [0.001, 0.999];

/**
 * The range raw values are clipped to before standardising: the training quantiles [0.1%,
 * 99.9%], or the extremes of a smaller sample; none without values. A served value beyond it
 * reads as the nearest value training saw, as a tree's split reads it: the network's weights on
 * an input never learnt what lies past the data, and a column constant in training (whose
 * weights never learnt anything) then reads the same whatever a request sends.
 */
/**
 * Which kind of input every training row had, when they all had one kind: the network learnt
 * nothing of the other (NumericState.seen in ./state.ts). No rows: nothing to say.
 */
function seenOnly(withValue: number, rows: number): { seen?: "values" | "missing" } {
  if (rows === 0) return {};
  if (withValue === rows) return { seen: "values" };
  if (withValue === 0) return { seen: "missing" };
  return {};
}

function trainingRange(sample: readonly number[]): [number, number] | undefined {
  if (sample.length === 0) return undefined;
  const sorted = Float64Array.from(sample).sort();
  if (sample.length < MIN_VALUES_FOR_RANGE) return [sorted[0]!, sorted[sorted.length - 1]!];
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  return [at(OUTLIER_QUANTILES[0]), at(OUTLIER_QUANTILES[1])];
}

function clippedMoments(sample: readonly number[], [lo, hi]: [number, number]): Moments {
  const m = new Moments();
  for (const x of sample) m.add(x < lo ? lo : x > hi ? hi : x);
  return m;
}

/**
 * Welford's running mean and variance. The squared deviations of values past ~1e154 overflow a
 * double (a std of Infinity, which the manifest's JSON writes as null, so served rows would
 * encode unlike training rows); they are also summed in units of the largest |value| seen, and
 * that sum is used where the plain one overflowed.
 */
class Moments {
  private n = 0;
  private m = 0;
  private m2 = 0;
  /** Values added. */
  get count(): number {
    return this.n;
  }
  /** The largest |value| seen, and m2 divided by its square. */
  private scale = 0;
  private m2Scaled = 0;
  add(x: number): void {
    this.n++;
    const d = x - this.m;
    const before = this.m;
    this.m += d / this.n;
    this.m2 += d * (x - this.m);
    const size = Math.abs(x);
    if (size > this.scale) {
      this.m2Scaled *= (this.scale / size) ** 2;
      this.scale = size;
    }
    if (this.scale > 0) this.m2Scaled += ((x - before) / this.scale) * ((x - this.m) / this.scale);
  }
  mean(): number {
    return this.n > 0 ? this.m : 0;
  }
  /** Sample standard deviation; 1 for a constant or absent feature (so scaling is a no-op). */
  std(): number {
    let std = this.n > 1 ? Math.sqrt(this.m2 / (this.n - 1)) : 0;
    if (!Number.isFinite(std) && this.n > 1) std = this.scale * Math.sqrt(this.m2Scaled / (this.n - 1));
    return std > 1e-12 && Number.isFinite(std) ? std : 1;
  }
}

/**
 * Welford's running mean and variance of each element of a vector. Elements are within float32's
 * range (values.ts refuses larger ones), so their squares cannot overflow a double.
 */
class ElementMoments {
  private n = 0;
  private readonly m: Float64Array;
  private readonly m2: Float64Array;
  constructor(dim: number) {
    this.m = new Float64Array(dim);
    this.m2 = new Float64Array(dim);
  }
  /** Vectors added. */
  get count(): number {
    return this.n;
  }
  add(x: readonly number[]): void {
    this.n++;
    const { m, m2, n } = this;
    for (let i = 0; i < m.length; i++) {
      const d = x[i]! - m[i]!;
      m[i]! += d / n;
      m2[i]! += d * (x[i]! - m[i]!);
    }
  }
  mean(): number[] {
    return Array.from(this.m);
  }
  /** Sample standard deviations; 1 for a constant element (or too few rows), as Moments. */
  std(): number[] {
    return Array.from(this.m2, (m2) => {
      const std = this.n > 1 ? Math.sqrt(m2 / (this.n - 1)) : 0;
      return std > 1e-12 && Number.isFinite(std) ? std : 1;
    });
  }
}

/** Reservoir sampling (algorithm R) with a seeded generator, so fits are reproducible. */
class Reservoir {
  private readonly kept: number[] = [];
  private seen = 0;
  private state: number;
  constructor(
    private readonly capacity: number,
    seed: number,
  ) {
    this.state = seed >>> 0 || 1;
  }
  add(x: number): void {
    this.seen++;
    if (this.kept.length < this.capacity) this.kept.push(x);
    else {
      const j = Math.floor(this.random() * this.seen);
      if (j < this.capacity) this.kept[j] = x;
    }
  }
  values(): number[] {
    return this.kept;
  }
  private random(): number {
    // xorshift32
    let x = this.state;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.state = x >>> 0;
    return this.state / 4294967296;
  }
}

/**
 * Cut points between `buckets` equally populated buckets of the training values; none when
 * there is nothing to split. A value that holds at least a bucket's share of the rows (the zeros
 * of a zero-inflated count, a cap, a round number) gets a bucket of its own, and the buckets it
 * would have swallowed go to the other values: capital gains that are 0 in 96% of rows still get
 * 15 buckets over the 4% that are not, where plain quantile cuts (all 0) gave none. Continuous
 * values come out as before, a cut every n / buckets values. A cut is a training value: it and
 * everything above it up to the next cut fall in the same bucket.
 */
export function quantileBoundaries(sample: readonly number[], buckets: number): number[] {
  if (buckets < 2 || sample.length === 0) return [];
  const sorted = Float64Array.from(sample).sort();
  const values: number[] = [];
  const counts: number[] = [];
  for (const v of sorted) {
    if (values.length > 0 && values[values.length - 1] === v) counts[counts.length - 1]!++;
    else {
      values.push(v);
      counts.push(1);
    }
  }
  const boundaries: number[] = [];
  let rest = sorted.length; // rows not yet in a closed bucket
  let left = buckets; // buckets still open, the one being filled included
  let filled = 0; // rows in the bucket being filled
  const close = (at: number): void => {
    boundaries.push(values[at]!);
    rest -= filled;
    left--;
    filled = 0;
  };
  for (let i = 0; i < values.length && left > 1; i++) {
    const heavy = counts[i]! >= rest / left;
    if (heavy && filled > 0) {
      close(i);
      if (left === 1) break;
    }
    filled += counts[i]!;
    if ((heavy || filled >= rest / left) && i + 1 < values.length) close(i + 1);
  }
  return boundaries;
}

/**
 * The frequency column of a vocabulary from each entry's training count (`counts`, in vocabulary
 * order): the counts, and the mean and standard
 * deviation of log(1 + count) over all `rows` training rows (those whose value is missing or out
 * of the vocabulary count 0).
 */
function frequencyColumn(counts: Float64Array, rows: number, denseOffset: number): FrequencyColumn {
  const kept = Array.from(counts);
  let sum = 0;
  let squares = 0;
  let inVocab = 0;
  let least = Number.POSITIVE_INFINITY;
  for (const c of kept) {
    const x = Math.log1p(c);
    sum += c * x;
    squares += c * x * x;
    inVocab += c;
    if (c > 0 && c < least) least = c;
  }
  const mean = rows > 0 ? sum / rows : 0;
  const variance = rows > 0 ? squares / rows - mean * mean : 0;
  const std = variance > 1e-12 ? Math.sqrt(variance) : 1;
  // Training read a count of 0 where some row was missing or out of the vocabulary.
  const readZero = rows > inVocab || least === Number.POSITIVE_INFINITY;
  return { denseOffset, counts: kept, mean, std, ...(readZero ? {} : { least }) };
}

/**
 * A feature's target columns: per binary task, each local id's positive rate shrunk towards the
 * task's prior, and the mean and std of the rates over the training rows (each row at its value's
 * rate; missing and out-of-vocabulary values are local ids of their own, as the embedding has
 * them), from the vocabulary's counts and label sums (ValueStats.select) and the feature's
 * totals. Rates are rounded to six decimals: the manifest carries one per value and task.
 */
function targetColumns(
  spec: DatasetSpec,
  { counts, sums }: { counts: Float64Array; sums: Float64Array },
  stats: ValueStats,
  rows: number,
  denseOffset: number,
): TargetColumns | undefined {
  const m = TARGET_SMOOTHING;
  const width = 2 * stats.tasks.length;
  const inVocab = counts.reduce((a, c) => a + c, 0);
  const missingRows = rows - stats.rowsWithValue();
  const oovRows = rows - inVocab - missingRows;
  const tasks = stats.tasks.flatMap((task, t) => {
    const labelled = stats.total[2 * t]!;
    if (labelled === 0) return [];
    const prior = stats.total[2 * t + 1]! / labelled;
    const rate = (n: number, s: number) => Math.round(((s + m * prior) / (n + m)) * 1e6) / 1e6;
    const rates = new Array<number>(RESERVED_IDS + counts.length);
    // Out of vocabulary: whatever the total leaves after the missing values and the vocabulary.
    let oovN = labelled - stats.missing[2 * t]!;
    let oovS = stats.total[2 * t + 1]! - stats.missing[2 * t + 1]!;
    counts.forEach((_, i) => {
      const n = sums[i * width + 2 * t]!;
      const s = sums[i * width + 2 * t + 1]!;
      rates[RESERVED_IDS + i] = rate(n, s);
      oovN -= n;
      oovS -= s;
    });
    rates[MISSING_ID] = rate(stats.missing[2 * t]!, stats.missing[2 * t + 1]!);
    rates[OOV_ID] = rate(Math.max(0, oovN), Math.max(0, oovS));
    let sum = rates[MISSING_ID]! * missingRows + rates[OOV_ID]! * oovRows;
    let squares = rates[MISSING_ID]! ** 2 * missingRows + rates[OOV_ID]! ** 2 * oovRows;
    counts.forEach((c, i) => {
      const r = rates[RESERVED_IDS + i]!;
      sum += c * r;
      squares += c * r * r;
    });
    const mean = rows > 0 ? sum / rows : prior;
    const variance = rows > 0 ? squares / rows - mean * mean : 0;
    const std = variance > 1e-12 ? Math.sqrt(variance) : 1;
    return [{ task: spec.tasks[task]!.name, prior, rates, mean, std }];
  });
  return tasks.length > 0 ? { denseOffset, smoothing: m, tasks } : undefined;
}

/** Keys seen at least minCount times, most frequent first (ties by key, so fits are reproducible). */
function vocabulary(counts: ValueStats, minCount: number): string[] {
  return [...counts.entries()]
    .filter(([, c]) => c >= minCount)
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .map(([key]) => key);
}
