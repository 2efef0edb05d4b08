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
  type NumericState,
  OOV_ID,
  RESERVED_IDS,
} from "./state.ts";
import { categoryOf, numberOf, type ValueRules } from "./values.ts";

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

export interface Encoder {
  state: EncoderState;
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
  const features = state.features.map((f) => compileFeature(f, rules));
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
        const source = f.side === "user" ? request.user : request.context;
        f.write(source?.[f.name], batch.dense, batch.ids, 0, 0);
      }
      for (let r = 1; r < candidates.length; r++) {
        batch.dense.copyWithin(r * state.denseSize, 0, state.denseSize);
        batch.ids.copyWithin(r * state.idSlots, 0, state.idSlots);
      }
      for (let r = 0; r < candidates.length; r++) {
        const row = candidates[r]!;
        for (const f of items)
          f.write(row[f.name], batch.dense, batch.ids, r * state.denseSize, r * state.idSlots);
      }
      return batch;
    },
  };
}

function compileFeature(f: FeatureState, rules: ValueRules): CompiledFeature {
  return {
    name: f.name,
    side: f.side,
    write: f.kind === "numeric" ? numericWriter(f, rules) : categoricalWriter(f, rules),
  };
}

function numericWriter(f: NumericState, rules: ValueRules): WriteFeature {
  const scale = f.std > 0 ? 1 / f.std : 1;
  const { mean, clip, denseOffset } = f;
  const buckets = f.buckets;
  return (value, dense, ids, denseBase, idBase) => {
    const x = numberOf(value, rules);
    if (x === null || Number.isNaN(x)) {
      dense[denseBase + denseOffset] = 0;
      dense[denseBase + denseOffset + 1] = 1;
      if (buckets) ids[idBase + buckets.slot] = buckets.offset + MISSING_ID;
      return;
    }
    const z = (x - mean) * scale;
    dense[denseBase + denseOffset] = z > clip ? clip : z < -clip ? -clip : z;
    dense[denseBase + denseOffset + 1] = 0;
    if (buckets) ids[idBase + buckets.slot] = buckets.offset + 1 + bucketIndex(buckets.boundaries, x);
  };
}

/** Number of boundaries <= x (binary search): bucket 0 is below the first boundary. */
export function bucketIndex(boundaries: readonly number[], x: number): number {
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
  return (value, _dense, ids, _denseBase, base) => {
    const key = categoryOf(value, rules);
    ids[base + slot] = offset + (key === null ? MISSING_ID : localId(key));
  };
}

/** Maps a present category key to its local id (vocabulary lookup or hash bucket). */
function categoryIndex(f: CategoricalState): (key: string) => number {
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
