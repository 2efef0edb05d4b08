/**
 * The feature encoder used by both the trainer and the worker. `compileEncoder` does the
 * per-model work once (vocabulary maps, side lists); encoding a batch is then lookups only.
 */
import type { FeatureSide } from "../spec.ts";
import { fnv1a } from "./hash.ts";
import {
  type CategoricalState,
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

export interface Encoder {
  state: EncoderState;
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
  const rules: ValueRules = { trim: state.trim, missing: new Set(state.missing) };
  const dropped: Record<string, number> = {};
  const features = state.features.map((f) => compileFeature(f, rules, dropped));
  const shared = features.filter((f) => f.side !== "item");
  const items = features.filter((f) => f.side === "item");

  function allocate(rows: number): EncodedBatch {
    return {
      rows,
      dense: new Float32Array(rows * state.denseSize),
      ids: new Int32Array(rows * state.idSlots),
    };
  }

  function encodeRowInto(row: FeatureValues, batch: EncodedBatch, r: number): void {
    for (const f of features)
      f.write(row[f.name], batch.dense, batch.ids, r * state.denseSize, r * state.idSlots);
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
        writeAt(side, f, request[side]?.[f.name], batch, 0);
      }
      for (let r = 1; r < candidates.length; r++) {
        batch.dense.copyWithin(r * state.denseSize, 0, state.denseSize);
        batch.ids.copyWithin(r * state.idSlots, 0, state.idSlots);
      }
      for (let r = 0; r < candidates.length; r++) {
        const row = candidates[r]!;
        for (const f of items) writeAt(r, f, row[f.name], batch, r);
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
      f.write(value, batch.dense, batch.ids, r * state.denseSize, r * state.idSlots);
    } catch (error) {
      throw error instanceof FeatureValueError ? new FeatureValueError(f.name, error.reason, at) : error;
    }
  }
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
      return bagWriter(f, rules, (n) => {
        dropped[f.name]! += n;
      });
    case "vector":
      return vectorWriter(f, rules);
  }
}

function numericWriter(f: NumericState, rules: ValueRules): WriteFeature {
  const scale = f.std > 0 ? 1 / f.std : 1;
  const { mean, clip, denseOffset } = f;
  const buckets = f.buckets;
  const [lo, hi] = f.range ?? [Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY];
  return (value, dense, ids, denseBase, idBase) => {
    const x = numberOf(value, rules);
    // A value that is there but is no number is an error, as it is in training data
    // (trainer/data/check-record.ts), not a silent missing value.
    if (x !== null && Number.isNaN(x))
      throw new FeatureValueError(f.name, `${shownValue(value)} is not a number`);
    if (x === null) {
      dense[denseBase + denseOffset] = 0;
      dense[denseBase + denseOffset + 1] = 1;
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

function categoricalWriter(f: CategoricalState, rules: ValueRules): WriteFeature {
  const { offset, slot } = f;
  const localId = categoryIndex(f);
  const columns = derivedColumns(f);
  if (columns.length === 0)
    return (value, _dense, ids, _denseBase, base) => {
      const key = categoryOf(value, rules);
      ids[base + slot] = offset + (key === null ? MISSING_ID : localId(key));
    };
  return (value, dense, ids, denseBase, base) => {
    const key = categoryOf(value, rules);
    const id = key === null ? MISSING_ID : localId(key);
    ids[base + slot] = offset + id;
    for (const { at, values } of columns) dense[denseBase + at] = values[id] ?? 0;
  };
}

/**
 * The dense columns a categorical feature derives from its value, each as its value by local id:
 * the frequency column (missing and out-of-vocabulary count 0) and the target columns.
 */
function derivedColumns(f: CategoricalState): { at: number; values: Float32Array }[] {
  const columns: { at: number; values: Float32Array }[] = [];
  if (f.frequency) {
    const { denseOffset, counts, mean, std } = f.frequency;
    const values = new Float32Array(RESERVED_IDS + counts.length).fill(-mean / std);
    counts.forEach((c, i) => {
      values[RESERVED_IDS + i] = (Math.log1p(c) - mean) / std;
    });
    columns.push({ at: denseOffset, values });
  }
  f.target?.tasks.forEach(({ rates, mean, std }, t) => {
    columns.push({
      at: f.target!.denseOffset + t,
      values: Float32Array.from(rates, (r) => (r - mean) / std),
    });
  });
  return columns;
}

/**
 * Up to maxValues ids, each weighted 1/k for the k values kept; padding slots read the missing
 * row with weight 0. An empty bag reads the missing row with weight 1.
 */
function bagWriter(f: MultiCategoricalState, rules: ValueRules, drop: (n: number) => void): WriteFeature {
  const { offset, slot, maxValues, denseOffset, separator } = f;
  const localId = categoryIndex(f);
  return (value, dense, ids, denseBase, idBase) => {
    const keys = categoriesOf(value, separator, rules);
    const k = Math.min(keys.length, maxValues);
    if (keys.length > k) drop(keys.length - k);
    const weight = k > 0 ? 1 / k : 0;
    for (let i = 0; i < maxValues; i++) {
      ids[idBase + slot + i] = offset + (i < k ? localId(keys[i]!) : MISSING_ID);
      dense[denseBase + denseOffset + i] = i < k ? weight : 0;
    }
    if (k === 0) dense[denseBase + denseOffset] = 1;
  };
}

/** The numbers as given, then the missing indicator; a value of the wrong length is an error, not a guess. */
function vectorWriter(f: VectorState, rules: ValueRules): WriteFeature {
  const { name, dim, separator, denseOffset } = f;
  return (value, dense, _ids, denseBase) => {
    let x: number[] | null;
    try {
      x = vectorOf(value, dim, separator, rules);
    } catch (error) {
      if (error instanceof VectorValueError) throw new FeatureValueError(name, error.message);
      throw error;
    }
    const at = denseBase + denseOffset;
    if (x === null) {
      dense.fill(0, at, at + dim);
      dense[at + dim] = 1;
      return;
    }
    // + 0 turns -0 into 0: the same to the network, and JSON (fixtures, logs) cannot keep the sign.
    for (let i = 0; i < dim; i++) dense[at + i] = x[i]! + 0;
    dense[at + dim] = 0;
  };
}

/** Maps a present category key to its local id (vocabulary lookup or hash bucket). */
function categoryIndex(f: CategoricalState | MultiCategoricalState): (key: string) => number {
  if (f.hashBuckets !== undefined) {
    const buckets = f.hashBuckets;
    return (key) => RESERVED_IDS + (fnv1a(key) % buckets);
  }
  const index = new Map<string, number>();
  (f.vocab ?? []).forEach((key, i) => {
    index.set(key, RESERVED_IDS + i);
  });
  return (key) => index.get(key) ?? OOV_ID;
}
