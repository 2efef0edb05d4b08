/**
 * The nightly pipeline's parts and what they hand each other (docs/pipeline.md):
 *
 *   data (data.ts) ─▶ drift (drift.ts) ─▶ train ─▶ evaluate ─▶ gate (gate.ts) ─▶ publish
 *   (registry/) ─▶ smoke test (smoke.ts) ─▶ record (record.ts), orchestrated by run.ts.
 *
 * The registry is where models are published: an R2 bucket of content-addressed model
 * directories and a KV namespace of pointers, the same layout the worker reads
 * (edge/model/store.ts): `models/<sha256>/manifest.json` + the files it lists, and KV
 * `models/current` / `models/challenger` holding such a prefix. Local mode uses wrangler's local
 * state (the folder `wrangler dev --persist-to` serves from); remote mode Cloudflare's.
 */

/** A model directory's file sizes in bytes: its graphs and manifest.json (what the worker downloads). */
export interface ModelSizes {
  modelBytes: number;
  int8Bytes?: number;
  manifestBytes?: number;
}

/** One object read back from the registry's bucket. */
export interface StoredObject {
  bytes: Uint8Array;
  /** The store's version tag of the object (R2's etag), for conditional writes. */
  etag: string;
}

/** The bucket and pointer calls the pipeline makes; local and remote registries implement them. */
export interface Registry {
  /** Where it writes, for logs and records ("local:/path/to/state", "r2:bucket"). */
  readonly describe: string;
  get(key: string): Promise<StoredObject | undefined>;
  /** Writes `bytes` under `key`; with `ifAbsent`, only when no object has that key (false if one has). */
  put(key: string, bytes: Uint8Array, options?: { ifAbsent?: boolean }): Promise<boolean>;
  delete(key: string): Promise<void>;
  /** Keys under `prefix`, in key order. */
  list(prefix: string): Promise<string[]>;
  /** The prefix a KV pointer names, or undefined. */
  getPointer(name: PointerName): Promise<string | undefined>;
  setPointer(name: PointerName, prefix: string): Promise<void>;
  deletePointer(name: PointerName): Promise<void>;
}

export type PointerName = "models/current" | "models/challenger";

/** A model directory published whole: every file verified by size and sha256 after upload. */
export interface PublishedModel {
  /** `models/<sha256 of manifest.json>/`. */
  prefix: string;
  /** manifest.id and manifest.version. */
  id: string;
  version: string;
  files: Record<string, { bytes: number; sha256: string }>;
}

/** Per-feature statistics of a data set, saved beside a model as `data-stats.json`. */
export interface DataStats {
  rows: number;
  features: Record<string, FeatureStats>;
  /** Per task: the share of labelled rows that are positive (binary) or the mean (regression). */
  labels: Record<string, { rate: number; labelled: number }>;
}

export type FeatureStats =
  | {
      kind: "numeric";
      /** Bin edges (quantiles of the data the stats were made from); bins are (-inf, e0], (e0, e1], ... (e_last, inf). */
      edges: number[];
      /** Share of present values in each of edges.length + 1 bins. */
      shares: number[];
      missing: number;
    }
  | {
      kind: "categorical";
      /** Share of present values per most frequent category; the rest sum in `other`. */
      shares: Record<string, number>;
      other: number;
      missing: number;
    };

/** One feature's or label's change between the champion's training data and the new data. */
export interface DriftFinding {
  /** "feature:<name>" or "label:<task>". */
  subject: string;
  /** "psi" (population stability index), "js" (Jensen-Shannon divergence, base 2), "unseen" (share of new categories), "rate" (label-rate change, absolute). */
  measure: "psi" | "js" | "unseen" | "rate";
  value: number;
  level: "ok" | "warn" | "stop";
}

export interface DriftReport {
  findings: DriftFinding[];
  /** The worst level of any finding. */
  level: "ok" | "warn" | "stop";
}

/** One gate rule's outcome, recorded with its threshold and the value that met or broke it. */
export interface GateResult {
  rule: string;
  passed: boolean;
  /** The measured value and the threshold it was held to, in words for the record. */
  detail: string;
  value?: number;
  threshold?: number;
}

export interface GateDecision {
  blessed: boolean;
  results: GateResult[];
}
