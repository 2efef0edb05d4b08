/**
 * Id dropout: during training, each row reads a chosen id-like feature (the item, the user) as a
 * value never seen, with a given probability, a fresh draw every epoch. The id reads the
 * out-of-vocabulary row and its frequency and target columns take what the encoder writes for an
 * unseen value, exactly what a request about a new item carries. Without it the network ranks
 * known items by their ids (their embedding, frequency and target columns explain the training
 * rows) and learns little from the side features a new item differs by; with it, it learns to read
 * them where the id says nothing (Volkovs, Yu and Poutanen, "DropoutNet", NeurIPS 2017).
 *
 * Rows are dropped in a copy of the batch, so the data is never changed, and the draws come from
 * the run's seed and the epoch: a resumed run drops the same rows as an uninterrupted one.
 */
import { compileEncoder } from "../../shared/encoder/encode.ts";
import {
  type CategoricalState,
  type EncoderState,
  encodedColumns,
  ID_FEATURE_ROWS,
  OOV_ID,
} from "../../shared/encoder/state.ts";
import { mixSeed, mulberry32 } from "../core/rng.ts";
import type { NetworkConfig } from "../models/network.ts";
import type { LabelledBatch } from "./batch.ts";

/** A value no vocabulary holds: the encoder reads it as out of vocabulary. */
const UNSEEN = "\u0000unseen";
/** The seed's stream for the draws (../core/rng.ts mixSeed); the epoch is mixed in after it. */
const DROPOUT_STREAM = 0x69646470;
/** The largest share: past half the rows, the feature's own rows would be the exception. */
export const MAX_ID_DROPOUT = 0.5;

/** One feature's dropout: where its id and derived columns sit, and what an unseen value writes. */
export interface DroppedFeature {
  name: string;
  share: number;
  /** The feature's id slot in a row's ids. */
  slot: number;
  /** The out-of-vocabulary row's index in the embedding table. */
  oov: number;
  /** The dense columns the value derives (frequency, target rates) and their values when unseen. */
  columns: readonly number[];
  values: readonly number[];
}

export interface IdDropout {
  features: readonly DroppedFeature[];
  seed: number;
}

/**
 * The dropout of `shares` (feature name -> share of rows) over the encoder's features. Each must be
 * a categorical feature with a vocabulary of over ID_FEATURE_ROWS rows (an id: a few-valued
 * feature like a genre is a side feature itself), and each share in (0, MAX_ID_DROPOUT].
 * Undefined when no share is given.
 */
export function idDropout(
  encoder: EncoderState,
  shares: Readonly<Record<string, number>>,
  seed: number,
): IdDropout | undefined {
  const entries = Object.entries(shares);
  if (entries.length === 0) return undefined;
  const encode = compileEncoder(encoder);
  const features = entries.map(([name, share]): DroppedFeature => {
    if (!(share > 0 && share <= MAX_ID_DROPOUT))
      throw new Error(
        `--id-dropout: ${name}'s share must be above 0 and at most ${MAX_ID_DROPOUT}, got ${share}`,
      );
    const f = encoder.features.find((x) => x.name === name);
    if (!f) {
      const ids = encoder.features.filter(isIdLike).map((x) => x.name);
      throw new Error(
        `--id-dropout: the spec has no feature "${name}" (id-like features: ${ids.join(", ") || "none"})`,
      );
    }
    if (!isIdLike(f))
      throw new Error(
        `--id-dropout: "${name}" is not an id-like feature (a categorical feature with over ${ID_FEATURE_ROWS} values in training)`,
      );
    const probe = encode.encodeRows([{ [name]: UNSEEN }]).dense;
    const columns = encodedColumns(f).dense;
    return {
      name,
      share,
      slot: f.slot,
      oov: f.offset + OOV_ID,
      columns,
      values: columns.map((c) => probe[c]!),
    };
  });
  return { features, seed };
}

function isIdLike(f: EncoderState["features"][number]): f is CategoricalState {
  return f.kind === "categorical" && f.vocab !== undefined && f.size > ID_FEATURE_ROWS;
}

/** The draws of one epoch: uniform in [0, 1), from the run's seed and the epoch alone. */
export function epochDraws(dropout: IdDropout, epoch: number): () => number {
  return mulberry32(mixSeed(mixSeed(dropout.seed, DROPOUT_STREAM), epoch));
}

/**
 * The rows `idx` of `data` as a batch of their own, each feature read as unseen in about its share
 * of them (one draw per row and feature, in row order), and the indices 0..n-1 into it.
 */
export function dropIds(
  config: Pick<NetworkConfig, "denseSize" | "idSlots">,
  data: LabelledBatch,
  idx: Int32Array,
  dropout: IdDropout,
  random: () => number,
): { batch: LabelledBatch; idx: Int32Array } {
  const n = idx.length;
  const { denseSize: D, idSlots: S } = config;
  const dense = new Float32Array(n * D);
  const ids = new Int32Array(n * S);
  for (let i = 0; i < n; i++) {
    const r = idx[i]!;
    dense.set(data.dense.subarray(r * D, (r + 1) * D), i * D);
    ids.set(data.ids.subarray(r * S, (r + 1) * S), i * S);
    for (const f of dropout.features) {
      if (random() >= f.share) continue;
      ids[i * S + f.slot] = f.oov;
      for (let c = 0; c < f.columns.length; c++) dense[i * D + f.columns[c]!] = f.values[c]!;
    }
  }
  const labels: Record<string, Float32Array> = {};
  for (const [name, y] of Object.entries(data.labels)) labels[name] = Float32Array.from(idx, (r) => y[r]!);
  const groups = data.groups ? Uint32Array.from(idx, (r) => data.groups![r]!) : null;
  const batch: LabelledBatch = { rows: n, dense, ids, labels, groups };
  return { batch, idx: Int32Array.from({ length: n }, (_, i) => i) };
}
