/** The encoder's fitted state: everything needed to turn raw feature values into model inputs. */
import type { FeatureSide } from "../spec.ts";

/** The one kind of input a feature's training rows had (NumericState.seen). */
export type InputSeen = "values" | "missing";

/** Writes two dense slots: the standardised value (0 when missing) and a missing indicator. */
export interface NumericState {
  kind: "numeric";
  name: string;
  side: FeatureSide;
  mean: number;
  std: number;
  /** Standardised values are clipped to [-clip, clip] so one outlier cannot dominate a batch. */
  clip: number;
  /**
   * Raw values are first clipped to the training quantiles [0.1%, 99.9%] (absent for small
   * samples, and in states fitted before it existed); mean and std are those of clipped values.
   */
  range?: [number, number];
  /**
   * Set when every training row had a value ("values") or none had one ("missing"). The network
   * learnt nothing of the other kind, so it is read as this one: a missing value writes the
   * training mean with the indicator off (and the buckets' missing row, which training never
   * read); a value, where training had none, is read as missing. Absent: training had both.
   */
  seen?: InputSeen;
  denseOffset: number;
  /**
   * Optional quantile buckets: one id slot whose local id is 0 for missing and 1 + the index of
   * the training-quantile bucket the value falls in, embedded like a categorical feature. It
   * gives the network a piecewise view of the number (what trees get from their splits).
   */
  buckets?: { slot: number; offset: number; size: number; boundaries: number[] };
}

/**
 * A categorical feature with more embedding rows than this is id-like (users, items, films):
 * it gets a frequency column and target columns, and the trainer's auto rule gives its rows
 * sparse Adagrad.
 */
export const ID_FEATURE_ROWS = 100;

/**
 * One dense column: (log(1 + count) − mean) / std, where count is how many training rows had the
 * row's value (0 for a missing or out-of-vocabulary value); mean and std over the training rows.
 * How often a value was seen says how far its embedding can be trusted, and popularity itself
 * predicts (a film many rated, a user who rates a lot).
 */
export interface FrequencyColumn {
  denseOffset: number;
  /** Training rows per vocabulary entry, in vocabulary order. */
  counts: number[];
  mean: number;
  std: number;
  /**
   * The fewest training rows any training row's value had: a value with fewer (new to the
   * encoder, missing, or a hash bucket no training value fell in) reads this count, as a number
   * is clipped to its training range, since the network never saw a smaller one. Absent: 0
   * (some training rows were missing or out of the vocabulary; states fitted before it).
   */
  least?: number;
}

/** Prior rows in a target column's shrunk rate: a value seen n times weighs n/(n + 20) of its own rate. */
export const TARGET_SMOOTHING = 20;

/**
 * One task's target column: the rate of the task's positives among the training rows that had
 * the row's value, shrunk towards the task's overall rate (`prior`) by TARGET_SMOOTHING rows,
 * then standardised: (rate − mean) / std, mean and std over the training rows. A rate learned
 * from the labels is what a rarely seen id's embedding cannot learn on its own (gradient-boosted
 * trees rely on the same statistic for columns of many values).
 */
export interface TargetTask {
  task: string;
  /** The task's positive rate over the training rows that have its label. */
  prior: number;
  /** The shrunk rate by local id: missing, out of vocabulary, then each vocabulary entry. */
  rates: number[];
  mean: number;
  std: number;
}

/**
 * Target columns of a categorical feature: one dense column per binary task, from
 * `denseOffset` in task order. Training rows read out-of-fold rates (their own labels never
 * encode them, ../../trainer/data/target-folds.ts); every other row reads `rates`.
 */
export interface TargetColumns {
  denseOffset: number;
  smoothing: number;
  tasks: TargetTask[];
}

/**
 * Writes one id slot: an index into the shared embedding table, and with `frequency` and
 * `target` dense columns.
 * Local ids: 0 = missing, 1 = out of vocabulary, 2.. = vocabulary entry (or hash bucket).
 */
export interface CategoricalState {
  kind: "categorical";
  name: string;
  side: FeatureSide;
  slot: number;
  /** First row of this feature in the shared embedding table. */
  offset: number;
  /** Rows this feature owns in the table (2 reserved + vocabulary or buckets). */
  size: number;
  vocab?: string[];
  hashBuckets?: number;
  frequency?: FrequencyColumn;
  target?: TargetColumns;
}

/**
 * A bag of categories, mean-pooled into one embedding. Writes `maxValues` consecutive id slots
 * (from `slot`) and as many dense columns (from `denseOffset`) holding each slot's pooling
 * weight: 1/k for each of the row's k values, 0 for the padding slots after them. The network
 * computes Σ weight·embedding over the slots. A row without values reads the missing id with
 * weight 1, so "no tags" has an embedding of its own. Local ids as CategoricalState.
 */
export interface MultiCategoricalState {
  kind: "multi_categorical";
  name: string;
  side: FeatureSide;
  separator: string;
  slot: number;
  maxValues: number;
  denseOffset: number;
  offset: number;
  size: number;
  vocab?: string[];
  hashBuckets?: number;
}

/**
 * Writes `dim` dense columns and a missing indicator after them; a missing vector writes zeros.
 * With `mean` and `std` (one per element, over the training rows that had the vector), element i
 * is written as (x − mean[i]) / std[i] clipped to ±`clip`; without them (`"scaling": "none"`, and
 * states fitted before vectors were scaled), as given.
 */
export interface VectorState {
  kind: "vector";
  name: string;
  side: FeatureSide;
  dim: number;
  separator: string;
  denseOffset: number;
  mean?: number[];
  std?: number[];
  clip?: number;
  /** As NumericState.seen (scaled vectors): a missing vector then writes its mean, indicator off. */
  seen?: InputSeen;
}

export type FeatureState = NumericState | CategoricalState | MultiCategoricalState | VectorState;

export interface EncoderState {
  /** 2 when a vector feature is scaled (readers of version 1 would feed it unscaled), else 1. */
  version: 1 | 2;
  trim: boolean;
  missing: string[];
  features: FeatureState[];
  /** Width of the float input "dense". */
  denseSize: number;
  /** Width of the int32 input "ids". */
  idSlots: number;
  /** Rows of the shared embedding table. */
  vocabSize: number;
}

/**
 * What a compiled encoder still needs to be described once its per-entry data lives in the
 * encoder itself (encode.ts keeps each vocabulary packed into one string with a hash table, and
 * each frequency and target column as a Float32Array by local id): the state without its id
 * features' vocabularies, training counts and target rates. It gives every feature's place in
 * the encoded row (offsets, slots, sizes) and the statistics' means and stds, and cannot be
 * compiled again. The worker keeps this of a loaded model (edge/model/serving-model.ts), not the
 * manifest's arrays, which held most of the memory of a model with a large vocabulary.
 */
export interface EncoderLayout extends Omit<EncoderState, "features"> {
  features: FeatureLayout[];
}

export type FeatureLayout = NumericState | CategoricalLayout | MultiCategoricalLayout | VectorState;

export interface CategoricalLayout extends Omit<CategoricalState, "vocab" | "frequency" | "target"> {
  frequency?: Omit<FrequencyColumn, "counts">;
  target?: Omit<TargetColumns, "tasks"> & { tasks: Omit<TargetTask, "rates">[] };
}

export type MultiCategoricalLayout = Omit<MultiCategoricalState, "vocab">;

/** The state's layout: a copy without the per-entry arrays (the state itself is left as it is). */
export function encoderLayout(state: EncoderState): EncoderLayout {
  return { ...state, features: state.features.map(featureLayout) };
}

function featureLayout(f: FeatureState): FeatureLayout {
  switch (f.kind) {
    case "categorical": {
      const { vocab: _vocab, frequency, target, ...rest } = f;
      const layout: CategoricalLayout = rest;
      if (frequency) {
        const { counts: _counts, ...column } = frequency;
        layout.frequency = column;
      }
      if (target)
        layout.target = { ...target, tasks: target.tasks.map(({ rates: _rates, ...task }) => task) };
      return layout;
    }
    case "multi_categorical": {
      const { vocab: _vocab, ...rest } = f;
      return rest;
    }
    default:
      return f;
  }
}

export const MISSING_ID = 0;
export const OOV_ID = 1;
export const RESERVED_IDS = 2;

/** One id slot of the "ids" input: the block of embedding rows it indexes, and who writes it. */
export interface IdSlot {
  slot: number;
  offset: number;
  size: number;
  feature: string;
}

/** Every id slot, in slot order: categorical features, numeric features' quantile buckets, bags' slots. */
export function idSlotLayout(state: EncoderLayout): IdSlot[] {
  const slots: IdSlot[] = [];
  for (const f of state.features) {
    const { ids } = encodedColumns(f);
    const rows = f.kind === "numeric" ? f.buckets : f.kind === "vector" ? undefined : f;
    for (const slot of ids) slots.push({ slot, offset: rows!.offset, size: rows!.size, feature: f.name });
  }
  return slots.sort((a, b) => a.slot - b.slot);
}

/** The columns a feature writes: dense positions and id slots within one encoded row. */
export function encodedColumns(f: FeatureLayout): { dense: number[]; ids: number[] } {
  const range = (start: number, count: number) => Array.from({ length: count }, (_, i) => start + i);
  switch (f.kind) {
    case "numeric":
      return { dense: [f.denseOffset, f.denseOffset + 1], ids: f.buckets ? [f.buckets.slot] : [] };
    case "categorical":
      return {
        dense: [
          ...(f.frequency ? [f.frequency.denseOffset] : []),
          ...(f.target ? range(f.target.denseOffset, f.target.tasks.length) : []),
        ],
        ids: [f.slot],
      };
    case "multi_categorical":
      return { dense: range(f.denseOffset, f.maxValues), ids: range(f.slot, f.maxValues) };
    case "vector":
      return { dense: range(f.denseOffset, f.dim + 1), ids: [] };
  }
}

/**
 * A run of id slots whose embeddings are pooled into one: Σ over `count` slots from `slot` of
 * embedding · the dense column at the same position from `weights`. Slots in no pool are
 * embedded one by one.
 */
export interface EmbeddingPool {
  slot: number;
  count: number;
  weights: number;
}

/** The pools of the encoder's bag features, in slot order. */
export function embeddingPools(state: EncoderLayout): EmbeddingPool[] {
  return state.features
    .filter((f) => f.kind === "multi_categorical")
    .map((f) => ({ slot: f.slot, count: f.maxValues, weights: f.denseOffset }))
    .sort((a, b) => a.slot - b.slot);
}
