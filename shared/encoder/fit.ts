/** Fits the encoder's state (statistics, vocabularies, layout) on training rows. */
import { type DatasetSpec, SpecError } from "../spec.ts";
import type { FeatureValues } from "./encode.ts";
import type { EncoderState, FeatureState, NumericState } from "./state.ts";
import { RESERVED_IDS } from "./state.ts";
import { categoryOf, numberOf, type ValueRules } from "./values.ts";

export interface FitOptions {
  /** Default minimum count for a category to get its own embedding row. */
  minCount: number;
  /** Standardised numeric values are clipped to this magnitude. */
  clip: number;
  /** Default number of quantile buckets per numeric feature (0: none). */
  numericBuckets: number;
}

export const DEFAULT_FIT_OPTIONS: FitOptions = { minCount: 2, clip: 8, numericBuckets: 16 };

export function fitEncoder(
  spec: DatasetSpec,
  rows: readonly FeatureValues[],
  options: FitOptions = DEFAULT_FIT_OPTIONS,
): EncoderState {
  const rules: ValueRules = { trim: spec.trim, missing: new Set(spec.missing) };
  const features: FeatureState[] = [];
  let denseSize = 0;
  let idSlots = 0;
  let vocabSize = 0;
  for (const f of spec.features) {
    if (f.type === "numeric") {
      const { mean, std } = moments(rows, f.name, rules);
      const numeric: NumericState = {
        kind: "numeric",
        name: f.name,
        side: f.side,
        mean,
        std,
        clip: options.clip,
        denseOffset: denseSize,
      };
      denseSize += 2;
      const boundaries = quantileBoundaries(rows, f.name, rules, f.buckets ?? options.numericBuckets);
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
      if (f.hashBuckets !== undefined) {
        const size = RESERVED_IDS + f.hashBuckets;
        features.push({ ...base, size, hashBuckets: f.hashBuckets });
        vocabSize += size;
      } else {
        const vocab = vocabulary(rows, f.name, rules, f.minCount ?? options.minCount);
        const size = RESERVED_IDS + vocab.length;
        features.push({ ...base, size, vocab });
        vocabSize += size;
      }
    } else {
      throw new SpecError(
        `dataset spec: features.${f.name}.type: "${f.type}" is not supported by the encoder yet`,
      );
    }
  }
  return { version: 1, trim: spec.trim, missing: [...spec.missing], features, denseSize, idSlots, vocabSize };
}

function moments(
  rows: readonly FeatureValues[],
  name: string,
  rules: ValueRules,
): { mean: number; std: number } {
  let n = 0;
  let mean = 0;
  let m2 = 0;
  for (const row of rows) {
    const x = numberOf(row[name], rules);
    if (x === null || Number.isNaN(x)) continue;
    n++;
    const d = x - mean;
    mean += d / n;
    m2 += d * (x - mean);
  }
  const std = n > 1 ? Math.sqrt(m2 / (n - 1)) : 0;
  return { mean: n > 0 ? mean : 0, std: std > 1e-12 ? std : 1 };
}

/**
 * Cut points between `buckets` equally populated buckets of the training values, deduplicated
 * (a feature with few distinct values gets fewer buckets); none when there is nothing to split.
 */
function quantileBoundaries(
  rows: readonly FeatureValues[],
  name: string,
  rules: ValueRules,
  buckets: number,
): number[] {
  if (buckets < 2) return [];
  const values: number[] = [];
  for (const row of rows) {
    const x = numberOf(row[name], rules);
    if (x !== null && !Number.isNaN(x)) values.push(x);
  }
  if (values.length === 0) return [];
  values.sort((a, b) => a - b);
  const boundaries: number[] = [];
  for (let k = 1; k < buckets; k++) {
    const cut = values[Math.floor((k * values.length) / buckets)]!;
    // A cut equal to the minimum would leave bucket 0 empty.
    if (cut > values[0]! && cut !== boundaries[boundaries.length - 1]) boundaries.push(cut);
  }
  return boundaries;
}

/** Keys seen at least minCount times, most frequent first (ties by key, so fits are reproducible). */
function vocabulary(
  rows: readonly FeatureValues[],
  name: string,
  rules: ValueRules,
  minCount: number,
): string[] {
  const counts = new Map<string, number>();
  for (const row of rows) {
    const key = categoryOf(row[name], rules);
    if (key !== null) counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts]
    .filter(([, c]) => c >= minCount)
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .map(([key]) => key);
}
