/**
 * The feature encoder used by both the trainer and the worker. `compileEncoder` does the
 * per-model work once (vocabulary indexes, derived columns, side lists); encoding a batch is then
 * lookups only. The compiled encoder keeps its own compact copy of everything per vocabulary
 * entry and reads nothing of the state after compiling: the worker keeps only the state's
 * layout (state.ts encoderLayout), so the manifest's arrays can be collected.
 */
import type { FeatureSide } from "../spec.ts";
import { checkEncoderState } from "./check-state.ts";
import { fnv1a, hashBucket } from "./hash.ts";
import {
  type CategoricalState,
  type EncoderLayout,
  type EncoderState,
  type FeatureState,
  MISSING_ID,
  type MultiCategoricalState,
  type NumericState,
  OOV_ID,
  RESERVED_IDS,
  type VectorState,
} from "./state.ts";
import {
  categoriesOf,
  categoryOf,
  numberOf,
  roundedIdProblem,
  shownValue,
  type ValueRules,
  VectorValueError,
  vectorOf,
} from "./values.ts";

/** Model inputs for n rows, row-major: dense [n, denseSize] and ids [n, idSlots]. */
export interface EncodedBatch {
  rows: number;
  dense: Float32Array;
  ids: Int32Array;
}

export type FeatureValues = Readonly<Record<string, unknown>>;

/** Per-request features: user and context are read once and shared by every candidate. */
export interface RequestFeatures {
  user?: FeatureValues | undefined;
  context?: FeatureValues | undefined;
}

/**
 * A feature value the encoder cannot read (a vector of the wrong length). `at` says where it
 * was in a request: "user", "context", or the candidate's index; undefined for flat rows.
 */
export class FeatureValueError extends Error {
  override name = "FeatureValueError";
  constructor(
    readonly feature: string,
    readonly reason: string,
    readonly at?: "user" | "context" | number,
  ) {
    super(`feature "${feature}": ${reason}`);
  }
}

/** `State` is EncoderLayout for the worker's encoders, which keep the layout instead of the state. */
export interface Encoder<State extends EncoderLayout = EncoderState> {
  state: State;
  /** Bag values dropped because a row had more than the feature's maxValues, per feature, since compiling. */
  dropped: Readonly<Record<string, number>>;
  /** Encodes flat rows (every feature read from the same record), as the trainer sees them. */
  encodeRows(rows: readonly FeatureValues[]): EncodedBatch;
  /** Encodes one flat row into row `r` of an existing batch (streaming loads fill batches row by row). */
  encodeRowInto(row: FeatureValues, batch: EncodedBatch, r: number): void;
  /** Encodes a rerank request: user/context features once, item features per candidate. */
  encodeRequest(request: RequestFeatures, candidates: readonly FeatureValues[]): EncodedBatch;
}

type WriteFeature = (
  value: unknown,
  dense: Float32Array,
  ids: Int32Array,
  denseBase: number,
  idBase: number,
) => void;

interface CompiledFeature {
  name: string;
  side: FeatureSide;
  write: WriteFeature;
}

export function compileEncoder(state: EncoderState): Encoder {
  checkEncoderState(state);
  const rules: ValueRules = { trim: state.trim, missing: new Set(state.missing) };
  const dropped: Record<string, number> = {};
  const features = state.features.map((f) => compileFeature(f, rules, dropped));
  const shared = features.filter((f) => f.side !== "item");
  const items = features.filter((f) => f.side === "item");
  // The closures below read these, never `state`: only the returned object holds it.
  const { denseSize, idSlots } = state;

  function allocate(rows: number): EncodedBatch {
    return { rows, dense: new Float32Array(rows * denseSize), ids: new Int32Array(rows * idSlots) };
  }

  function encodeRowInto(row: FeatureValues, batch: EncodedBatch, r: number): void {
    for (const f of features) f.write(field(row, f.name), batch.dense, batch.ids, r * denseSize, r * idSlots);
  }

  return {
    state,
    dropped,
    encodeRows(rows) {
      const batch = allocate(rows.length);
      for (let r = 0; r < rows.length; r++) encodeRowInto(rows[r]!, batch, r);
      return batch;
    },
    encodeRowInto,
    encodeRequest(request, candidates) {
      const batch = allocate(candidates.length);
      if (candidates.length === 0) return batch;
      // Encode the shared part into row 0, then copy it to the other rows: shared features
      // own their own slots, so item features written afterwards never overlap them.
      for (const f of shared) {
        const side = f.side === "user" ? "user" : "context";
        const values = request[side];
        writeAt(side, f, values ? field(values, f.name) : undefined, batch, 0);
      }
      for (let r = 1; r < candidates.length; r++) {
        batch.dense.copyWithin(r * denseSize, 0, denseSize);
        batch.ids.copyWithin(r * idSlots, 0, idSlots);
      }
      for (let r = 0; r < candidates.length; r++) {
        const row = candidates[r]!;
        for (const f of items) writeAt(r, f, field(row, f.name), batch, r);
      }
      return batch;
    },
  };

  /** Writes one feature of a request, saying where a bad value came from. */
  function writeAt(
    at: "user" | "context" | number,
    f: CompiledFeature,
    value: unknown,
    batch: EncodedBatch,
    r: number,
  ): void {
    try {
      f.write(value, batch.dense, batch.ids, r * denseSize, r * idSlots);
    } catch (error) {
      throw error instanceof FeatureValueError ? new FeatureValueError(f.name, error.reason, at) : error;
    }
  }
}

/**
 * A feature's value in a row: its own property only. A request's `features` object comes from
 * JSON.parse, so a model with a feature named "toString" or "valueOf" would otherwise read
 * Object.prototype's function where the request leaves the feature out.
 */
function field(row: FeatureValues, name: string): unknown {
  return Object.hasOwn(row, name) ? row[name] : undefined;
}

function compileFeature(
  f: FeatureState,
  rules: ValueRules,
  dropped: Record<string, number>,
): CompiledFeature {
  return { name: f.name, side: f.side, write: writer(f, rules, dropped) };
}

function writer(f: FeatureState, rules: ValueRules, dropped: Record<string, number>): WriteFeature {
  switch (f.kind) {
    case "numeric":
      return numericWriter(f, rules);
    case "categorical":
      return categoricalWriter(f, rules);
    case "multi_categorical":
      dropped[f.name] = 0;
      return bagWriter(f, rules, dropped);
    case "vector":
      return vectorWriter(f, rules);
  }
}

function numericWriter(f: NumericState, rules: ValueRules): WriteFeature {
  const scale = f.std > 0 ? 1 / f.std : 1;
  const { name, mean, clip, denseOffset } = f;
  const buckets = f.buckets;
  const [lo, hi] = f.range ?? [Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY];
  // What training never had reads as what it had (NumericState.seen).
  const missingUnseen = f.seen === "values";
  const valuesUnseen = f.seen === "missing";
  return (value, dense, ids, denseBase, idBase) => {
    const x = numberOf(value, rules);
    // A value that is there but is no number is an error, as it is in training data
    // (trainer/data/check-record.ts), not a silent missing value.
    if (x !== null && Number.isNaN(x))
      throw new FeatureValueError(name, `${shownValue(value)} is not a number`);
    if (x === null || valuesUnseen) {
      dense[denseBase + denseOffset] = 0;
      dense[denseBase + denseOffset + 1] = missingUnseen ? 0 : 1;
      if (buckets) ids[idBase + buckets.slot] = buckets.offset + MISSING_ID;
      return;
    }
    const z = ((x < lo ? lo : x > hi ? hi : x) - mean) * scale;
    dense[denseBase + denseOffset] = z > clip ? clip : z < -clip ? -clip : z;
    dense[denseBase + denseOffset + 1] = 0;
    if (buckets) ids[idBase + buckets.slot] = buckets.offset + 1 + bucketIndex(buckets.boundaries, x);
  };
}

/** Number of boundaries <= x (binary search): bucket 0 is below the first boundary. */
export function bucketIndex(boundaries: ArrayLike<number>, x: number): number {
  let lo = 0;
  let hi = boundaries.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (boundaries[mid]! <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** A rounded integer id is refused (roundedIdProblem), as the trainer refuses it in a log. */
function refuseRoundedId(name: string, value: unknown): void {
  const problem = roundedIdProblem(value);
  if (problem) throw new FeatureValueError(name, problem);
}

/**
 * A single category's key, refusing what the trainer refuses in a log: a list or object (a bag's
 * values sent to a one-value feature would otherwise read as missing) and a rounded integer id.
 */
function categoryKey(name: string, value: unknown, rules: ValueRules): string | null {
  if (typeof value === "object" && value !== null)
    throw new FeatureValueError(name, `${shownValue(value)} is not a category (a string, number or boolean)`);
  refuseRoundedId(name, value);
  return categoryOf(value, rules);
}

function categoricalWriter(f: CategoricalState, rules: ValueRules): WriteFeature {
  const { name, offset, slot } = f;
  const localId = categoryIndex(f);
  const columns = derivedColumns(f);
  if (columns.length === 0)
    return (value, _dense, ids, _denseBase, base) => {
      const key = categoryKey(name, value, rules);
      ids[base + slot] = offset + (key === null ? MISSING_ID : localId(key));
    };
  return (value, dense, ids, denseBase, base) => {
    const key = categoryKey(name, value, rules);
    const id = key === null ? MISSING_ID : localId(key);
    ids[base + slot] = offset + id;
    for (const { at, values } of columns) dense[denseBase + at] = values[id] ?? 0;
  };
}

/**
 * The dense columns a categorical feature derives from its value, each as its value by local id:
 * the frequency column (missing and out-of-vocabulary values count 0, or the state's `least`) and
 * the target columns. Plain
 * loops: Float32Array.from with a map function took ~90 ms for two tasks' 231,000 rates.
 */
function derivedColumns(f: CategoricalState): { at: number; values: Float32Array }[] {
  const columns: { at: number; values: Float32Array }[] = [];
  if (f.frequency) {
    const { denseOffset, counts, mean, std } = f.frequency;
    const least = f.frequency.least ?? 0;
    const values = new Float32Array(RESERVED_IDS + counts.length).fill((Math.log1p(least) - mean) / std);
    for (let i = 0; i < counts.length; i++)
      values[RESERVED_IDS + i] = (Math.log1p(Math.max(counts[i]!, least)) - mean) / std;
    columns.push({ at: denseOffset, values });
  }
  if (f.target) {
    const { denseOffset, tasks } = f.target;
    for (let t = 0; t < tasks.length; t++) {
      const { rates, mean, std } = tasks[t]!;
      const values = new Float32Array(rates.length);
      for (let i = 0; i < rates.length; i++) values[i] = (rates[i]! - mean) / std;
      columns.push({ at: denseOffset + t, values });
    }
  }
  return columns;
}

/**
 * Up to maxValues ids, each weighted 1/k for the k values kept; padding slots read the missing
 * row with weight 0. An empty bag reads the missing row with weight 1.
 */
function bagWriter(
  f: MultiCategoricalState,
  rules: ValueRules,
  dropped: Record<string, number>,
): WriteFeature {
  const { name, offset, slot, maxValues, denseOffset, separator } = f;
  const localId = categoryIndex(f);
  return (value, dense, ids, denseBase, idBase) => {
    if (Array.isArray(value)) for (const part of value) refuseRoundedId(name, part);
    const keys = categoriesOf(value, separator, rules);
    const k = Math.min(keys.length, maxValues);
    if (keys.length > k) dropped[name]! += keys.length - k;
    const weight = k > 0 ? 1 / k : 0;
    for (let i = 0; i < maxValues; i++) {
      ids[idBase + slot + i] = offset + (i < k ? localId(keys[i]!) : MISSING_ID);
      dense[denseBase + denseOffset + i] = i < k ? weight : 0;
    }
    if (k === 0) dense[denseBase + denseOffset] = 1;
  };
}

/**
 * The numbers standardised and clipped (as given in a state without scaling), then the missing
 * indicator; a value of the wrong length is an error, not a guess.
 */
function vectorWriter(f: VectorState, rules: ValueRules): WriteFeature {
  const { name, dim, separator, denseOffset } = f;
  const scale = vectorScale(f);
  // What training never had reads as what it had (VectorState.seen; zeros are the scaled mean).
  const missingUnseen = scale !== undefined && f.seen === "values";
  const valuesUnseen = scale !== undefined && f.seen === "missing";
  return (value, dense, _ids, denseBase) => {
    let x: number[] | null;
    try {
      x = vectorOf(value, dim, separator, rules);
    } catch (error) {
      if (error instanceof VectorValueError) throw new FeatureValueError(name, error.message);
      throw error;
    }
    const at = denseBase + denseOffset;
    if (x === null || valuesUnseen) {
      dense.fill(0, at, at + dim);
      dense[at + dim] = missingUnseen ? 0 : 1;
      return;
    }
    if (scale) {
      const { mean, inverse, clip } = scale;
      for (let i = 0; i < dim; i++) {
        const z = (x[i]! - mean[i]!) * inverse[i]!;
        dense[at + i] = (z > clip ? clip : z < -clip ? -clip : z) + 0;
      }
    } else {
      // + 0 turns -0 into 0: the same to the network, and JSON (fixtures, logs) cannot keep the sign.
      for (let i = 0; i < dim; i++) dense[at + i] = x[i]! + 0;
    }
    dense[at + dim] = 0;
  };
}

/** A vector's scaling as compiled (check-state.ts has checked its arrays against `dim`). */
function vectorScale(
  f: VectorState,
): { mean: Float64Array; inverse: Float64Array; clip: number } | undefined {
  const { mean, std, clip } = f;
  if (mean === undefined || std === undefined || clip === undefined) return undefined;
  return { mean: Float64Array.from(mean), inverse: Float64Array.from(std, (s) => 1 / s), clip };
}

/** Maps a present category key to its local id (vocabulary lookup or hash bucket). */
function categoryIndex(f: CategoricalState | MultiCategoricalState): (key: string) => number {
  if (f.hashBuckets !== undefined) {
    const buckets = f.hashBuckets;
    return (key) => RESERVED_IDS + hashBucket(key, buckets);
  }
  return vocabularyIndex(f.vocab ?? []);
}

/**
 * A vocabulary lookup that gives what a Map from each entry to RESERVED_IDS + its index would
 * (the last of repeated entries wins; a key matches only the same UTF-16 code units; anything
 * else is OOV_ID), at a fraction of the memory and build time: the entries packed into
 * one string with their start offsets, and an open-addressing hash table (linear probing, at most
 * half full) of entry numbers. It keeps no reference to `vocab` or its strings. For 231,000
 * entries of 5-12 characters (Node) it holds 5.8 MB where a Map, with the strings and arrays it
 * keeps alive, holds ~17 MB; it builds in ~45 ms against 80-140 ms, and looks up in half the time.
 */
export function vocabularyIndex(vocab: readonly unknown[]): (key: string) => number {
  const n = vocab.length;
  if (n === 0) return () => OOV_ID;
  // starts[e] .. starts[e + 1]: entry e in `packed`. A non-string entry (a manifest is not
  // checked that deep) packs as "" and is left out of the table: no key matches it, as with a Map.
  const starts = new Int32Array(n + 1);
  let length = 0;
  let strings = true;
  for (let e = 0; e < n; e++) {
    const entry = vocab[e];
    starts[e] = length;
    if (typeof entry === "string") length += entry.length;
    else strings = false;
  }
  starts[n] = length;
  const packed = strings ? vocab.join("") : vocab.map((v) => (typeof v === "string" ? v : "")).join("");

  const bits = Math.max(2, 32 - Math.clz32(2 * n - 1));
  const mask = 2 ** bits - 1;
  // The top bits of FNV-1a: its last multiply mixes every input bit into them, not into the low ones.
  const shift = 32 - bits;
  /** Entry number + 1 by hash slot; 0 = empty. */
  const table = new Int32Array(2 ** bits);
  for (let e = 0; e < n; e++) {
    const entry = vocab[e];
    if (typeof entry !== "string") continue;
    let j = fnv1a(entry) >>> shift;
    while (table[j] !== 0 && vocab[table[j]! - 1] !== entry) j = (j + 1) & mask;
    table[j] = e + 1;
  }

  return (key) => {
    for (let j = fnv1a(key) >>> shift; ; j = (j + 1) & mask) {
      const slot = table[j]!;
      if (slot === 0) return OOV_ID;
      const start = starts[slot - 1]!;
      if (starts[slot]! - start === key.length && packed.startsWith(key, start))
        return RESERVED_IDS + slot - 1;
    }
  };
}
