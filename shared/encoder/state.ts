/** The encoder's fitted state: everything needed to turn raw feature values into model inputs. */
import type { FeatureSide } from "../spec.ts";

/** Writes two dense slots: the standardised value (0 when missing) and a missing indicator. */
export interface NumericState {
  kind: "numeric";
  name: string;
  side: FeatureSide;
  mean: number;
  std: number;
  /** Standardised values are clipped to [-clip, clip] so one outlier cannot dominate a batch. */
  clip: number;
  denseOffset: number;
  /**
   * Optional quantile buckets: one id slot whose local id is 0 for missing and 1 + the index of
   * the training-quantile bucket the value falls in, embedded like a categorical feature. It
   * gives the network a piecewise view of the number (what trees get from their splits).
   */
  buckets?: { slot: number; offset: number; size: number; boundaries: number[] };
}

/**
 * Writes one id slot: an index into the shared embedding table.
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
}

export type FeatureState = NumericState | CategoricalState;

export interface EncoderState {
  version: 1;
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

/** Every id slot, in slot order: categorical features and numeric features' quantile buckets. */
export function idSlotLayout(state: EncoderState): IdSlot[] {
  const slots: IdSlot[] = [];
  for (const f of state.features) {
    if (f.kind === "categorical")
      slots.push({ slot: f.slot, offset: f.offset, size: f.size, feature: f.name });
    else if (f.buckets) slots.push({ ...f.buckets, feature: f.name });
  }
  return slots.sort((a, b) => a.slot - b.slot);
}
