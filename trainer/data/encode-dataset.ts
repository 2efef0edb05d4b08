/**
 * The trainer's loader: reads a log as a stream, twice or three times, and keeps only typed
 * arrays (encoded inputs, labels, a group hash per row), never the parsed records, so a file of
 * any size needs memory for its encoded form only (outside the JS heap).
 *
 *   scan    check every record (bad rows skipped and counted within the error budget), assign
 *           it to training or validation; for random and group splits the encoder's statistics
 *           are gathered in the same pass
 *   fit     time split only: the cut (the time below which a row trains) is known after the
 *           scan, so the statistics need a pass of their own
 *   encode  every kept record into its split's preallocated arrays
 */
import { compileEncoder, type EncodedBatch } from "../../shared/encoder/encode.ts";
import { startFit } from "../../shared/encoder/fit.ts";
import { fnv1a } from "../../shared/encoder/hash.ts";
import type { EncoderState } from "../../shared/encoder/state.ts";
import { decimalOf } from "../../shared/encoder/values.ts";
import type { DatasetSpec } from "../../shared/spec.ts";
import { ColumnError, recordChecker } from "./check-record.ts";
import { DataError, type RawRecord, readRecords } from "./read-rows.ts";
import { splitHash, validThreshold } from "./split.ts";
import { writeOutOfFoldTargets } from "./target-folds.ts";

export interface SplitPlan {
  validFraction: number;
  seed: number;
  /**
   * Validation = the latest `validFraction` of rows by this column (numbers, or dates that
   * Date.parse reads); otherwise by group (spec.group) or by row, at random with `seed`.
   */
  timeColumn?: string;
  /**
   * k-fold cross-validation: rows (or groups) are dealt into k folds by the same seeded hash,
   * and fold `index` validates; validFraction is then ignored.
   */
  fold?: { k: number; index: number };
  /**
   * The folds training rows are dealt into for their out-of-fold target columns (default
   * TARGET_FOLDS). A run that averages k fold networks passes its k: the same dealing then
   * validates each network on rows whose target columns never read their own labels.
   */
  targetFolds?: number;
}

export interface ErrorBudget {
  /** Bad rows to skip (and count) before the load stops; 0 stops at the first. */
  maxBadRows: number;
}

export interface EncodedPart extends EncodedBatch {
  labels: Record<string, Float32Array>;
  /** Hash of each row's group key (spec.group), for per-group metrics and ranking losses. */
  groups: Uint32Array | null;
}

export interface EncodedDataset {
  encoder: EncoderState;
  train: EncodedPart;
  valid: EncodedPart;
  /** Every data row read, and how many were skipped as bad (the first few reasons kept). */
  counts: { read: number; skipped: number; train: number; valid: number };
  skipped: string[];
  /** Per task whose spec masks missing labels: kept rows without its label, over both parts. */
  unlabelled: Record<string, number>;
  /** Per binary task: its positive training rows. */
  positives: Record<string, number>;
  split: "random" | "group" | "time";
  /** Per bag (multi_categorical) feature: values dropped past its maxValues, over both parts. */
  dropped: Record<string, number>;
  /** Categorical features hashed because they had more distinct values than the encoder tracks. */
  hashed: string[];
  /** Features that did not vary over the training rows (constantFeatures). */
  constant: string[];
}

const TRAIN = 0;
const VALID = 1;
const SKIP = 2;
const KEPT_REASONS = 5;

export async function encodeDataset(
  file: string,
  spec: DatasetSpec,
  plan: SplitPlan,
  budget: ErrorBudget = { maxBadRows: 0 },
): Promise<EncodedDataset> {
  const split = plan.timeColumn !== undefined ? "time" : spec.group ? "group" : "random";
  const checker = recordChecker(file, spec);
  const fit = startFit(spec);
  const assignment = new Growable((n) => new Uint8Array(n));
  const times = split === "time" ? new Growable((n) => new Float64Array(n)) : null;
  const timeOf = plan.timeColumn !== undefined ? timeReader(plan.timeColumn, file) : undefined;
  // Each kept row's labels, in file order: the encode pass reads them instead of checking again.
  const labels = spec.tasks.map(() => new Growable((n) => new Float32Array(n)));
  const skipped: string[] = [];
  let skippedCount = 0;
  const threshold = validThreshold(plan.validFraction);
  if (plan.fold && plan.timeColumn !== undefined)
    throw new DataError("--folds: k-fold cross-validation deals rows at random; it cannot use --time-column");
  const validates = plan.fold
    ? (hash: number) => hash % plan.fold!.k === plan.fold!.index
    : (hash: number) => hash < threshold;

  for await (const source of readRecords(file, spec)) {
    const { record, line } = source;
    let time = 0;
    let ys: number[];
    try {
      ys = checker.check(source);
      if (times) time = timeOf!(record, line);
    } catch (error) {
      if (!(error instanceof DataError) || error instanceof ColumnError) throw error;
      if (skippedCount >= budget.maxBadRows)
        throw budget.maxBadRows === 0
          ? error
          : new DataError(`${error.message} (over the error budget of ${budget.maxBadRows} bad rows)`);
      skippedCount++;
      if (skipped.length < KEPT_REASONS) skipped.push(error.message);
      assignment.push(SKIP);
      continue;
    }
    ys.forEach((y, t) => {
      labels[t]!.push(y);
    });
    if (times) {
      times.push(time);
      assignment.push(TRAIN); // decided after the scan
      continue;
    }
    const key = split === "group" ? String(record[spec.group!] ?? "") : `#${assignment.length}`;
    const part = validates(splitHash(key, plan.seed)) ? VALID : TRAIN;
    assignment.push(part);
    if (part === TRAIN) fit.add(record, ys);
  }
  const read = assignment.length;
  if (read - skippedCount === 0) throw new DataError(`${file}: no data rows`);
  const keptLabels = labels.map((l) => l.values());

  if (times) {
    const keptTimes = times.values();
    const cut = timeCut(keptTimes, plan.validFraction);
    let k = 0;
    assignment.values().forEach((part, i) => {
      if (part !== SKIP && keptTimes[k++]! >= cut) assignment.set(i, VALID);
    });
    let i = 0;
    k = 0;
    for await (const { record } of readRecords(file, spec)) {
      const part = assignment.get(i++);
      if (part === SKIP) continue;
      const row = k++;
      if (part === TRAIN)
        fit.add(
          record,
          keptLabels.map((l) => l[row]!),
        );
    }
  }

  const encoder = fit.finish();
  const sizes = [0, 0];
  assignment.values().forEach((part) => {
    if (part !== SKIP) sizes[part]!++;
  });
  const parts = [allocate(spec, encoder, sizes[TRAIN]!), allocate(spec, encoder, sizes[VALID]!)];
  const compiled = compileEncoder(encoder);
  const filled = [0, 0];
  let i = 0;
  let k = 0;
  for await (const { record } of readRecords(file, spec)) {
    const part = assignment.get(i++);
    if (part === SKIP) continue;
    const target = parts[part]!;
    const r = filled[part]!++;
    compiled.encodeRowInto(record, target, r);
    spec.tasks.forEach((task, t) => {
      target.labels[task.name]![r] = keptLabels[t]![k]!;
    });
    k++;
    if (target.groups) target.groups[r] = groupHash(record, spec.group!);
  }
  const train = parts[TRAIN]!;
  const valid = parts[VALID]!;
  writeOutOfFoldTargets(encoder, train, train.labels, train.groups, plan.seed, plan.targetFolds);
  return {
    encoder,
    train,
    valid,
    counts: { read, skipped: skippedCount, train: sizes[TRAIN]!, valid: sizes[VALID]! },
    skipped,
    ...checkLabels(file, spec, train, valid),
    split,
    dropped: { ...compiled.dropped },
    hashed: fit.hashed(),
    constant: constantFeatures(encoder),
  };
}

/**
 * Checks every task has something to learn in training: a label on some row, and both classes
 * of a binary task. Where the validation part holds the other class, the split took it (a small
 * file, a rare class) and the message says so with both parts' counts; otherwise the file has one
 * class, which usually means `positive` does not name the file's positive value.
 * Returns the missing labels per masked task, and the positive training rows per binary task.
 */
function checkLabels(
  file: string,
  spec: DatasetSpec,
  train: EncodedPart,
  valid: EncodedPart,
): Pick<EncodedDataset, "unlabelled" | "positives"> {
  const counts: Record<string, number> = {};
  const positiveRows: Record<string, number> = {};
  for (const task of spec.tasks) {
    let missing = 0;
    let positives = 0;
    for (const v of train.labels[task.name]!) {
      if (Number.isNaN(v)) missing++;
      else if (v === 1) positives++;
    }
    const where = `${file}: task "${task.name}" (column "${task.column}")`;
    if (train.rows > 0 && missing === train.rows)
      throw new DataError(`${where}: no training row has a label`);
    const labelled = train.rows - missing;
    if (task.type === "binary" && labelled > 0 && (positives === 0 || positives === labelled)) {
      const only = positives === 0 ? 0 : 1;
      const held = classCounts(valid.labels[task.name]!);
      if (only === 0 ? held.positives > 0 : held.positives < held.labelled) {
        throw new DataError(
          `${where}: the split left the training part with one class (every training label is ${only}): ` +
            `training part ${labelledRows(labelled)}, ${positives} positive; ` +
            `validation part ${labelledRows(held.labelled)}, ${held.positives} positive`,
        );
      }
      const named = task.positive
        ? `; positive values: ${task.positive.map((p) => JSON.stringify(p)).join(", ")}`
        : "";
      throw new DataError(`${where}: every training label is ${only}${named}`);
    }
    if (task.type === "binary") positiveRows[task.name] = positives;
    if (task.missingLabel === "mask") counts[task.name] = missing + countNaN(valid.labels[task.name]!);
  }
  return { unlabelled: counts, positives: positiveRows };
}

/** A binary task's labelled rows and positives in one part (NaN: a masked missing label). */
function classCounts(labels: Float32Array): { labelled: number; positives: number } {
  let labelled = 0;
  let positives = 0;
  for (const y of labels) {
    if (Number.isNaN(y)) continue;
    labelled++;
    if (y === 1) positives++;
  }
  return { labelled, positives };
}

function labelledRows(n: number): string {
  return `${n} labelled row${n === 1 ? "" : "s"}`;
}

function countNaN(values: Float32Array): number {
  let n = 0;
  for (const v of values) if (Number.isNaN(v)) n++;
  return n;
}

function allocate(spec: DatasetSpec, state: EncoderState, rows: number): EncodedPart {
  return {
    rows,
    dense: new Float32Array(rows * state.denseSize),
    ids: new Int32Array(rows * state.idSlots),
    labels: Object.fromEntries(spec.tasks.map((t) => [t.name, new Float32Array(rows)])),
    groups: spec.group ? new Uint32Array(rows) : null,
  };
}

function groupHash(record: RawRecord, column: string): number {
  return fnv1a(String(record[column] ?? ""));
}

/**
 * Reads the time column: decimal numbers (decimalOf: "0x10" is no time of 16) or dates, one form
 * for the whole file. A number beside dates would be compared with Date.parse's milliseconds
 * (unix seconds in a log of ISO dates sort as 1970), so the first row fixes the form.
 */
function timeReader(column: string, file: string): (record: RawRecord, line: number) => number {
  let form: { kind: "number" | "date"; line: number } | undefined;
  return (record, line) => {
    const value = record[column];
    if (value === undefined) throw new ColumnError(`${file}: --time-column: no column "${column}"`);
    const text = String(value).trim();
    const n = decimalOf(text);
    const kind = Number.isFinite(n) ? "number" : "date";
    const t = text === "" ? Number.NaN : kind === "number" ? n : Date.parse(text);
    if (!Number.isFinite(t))
      throw new DataError(`${file}:${line}: column "${column}": ${JSON.stringify(value)} is not a time`);
    form ??= { kind, line };
    if (kind !== form.kind)
      throw new ColumnError(
        `${file}:${line}: column "${column}": ${JSON.stringify(value)} is a ${kind}, and line ${form.line} holds a ${form.kind}: write every time one way`,
      );
    return t;
  };
}

/**
 * The time at and after which rows validate: the (1 - fraction) quantile of the times. Where that
 * is the earliest time (most rows share it: a log of whole days, nearly all of one), the next
 * later time, so that the earliest rows train; one time for every row leaves no training row.
 */
function timeCut(times: Float64Array, fraction: number): number {
  const sorted = Float64Array.from(times).sort();
  let index = Math.min(sorted.length - 1, Math.floor(sorted.length * (1 - fraction)));
  while (index < sorted.length - 1 && sorted[index] === sorted[0]) index++;
  return sorted[index]!;
}

/** A growable typed array (one value per data row, of a size known only after reading). */
class Growable<T extends Uint8Array | Float32Array | Float64Array> {
  private data: T;
  length = 0;
  constructor(private readonly make: (size: number) => T) {
    this.data = make(1024);
  }
  push(x: number): void {
    if (this.length === this.data.length) {
      const next = this.make(this.data.length * 2);
      next.set(this.data);
      this.data = next;
    }
    this.data[this.length++] = x;
  }
  get(i: number): number {
    return this.data[i]!;
  }
  set(i: number, x: number): void {
    this.data[i] = x;
  }
  values(): T {
    return this.data.subarray(0, this.length) as T;
  }
}

/**
 * Numeric features with no variation over the training rows, each with what it had ("one value
 * 7", "no values"): the network learns nothing from them. A request's number there is clipped to
 * the one training value (fit.ts trainingRange), but a feature with no values in training has no
 * range, and a value sent for it moves scores by weights training never shaped.
 */
export function constantFeatures(state: EncoderState): string[] {
  const out: string[] = [];
  for (const f of state.features)
    if (f.kind === "numeric") {
      if (!f.range) out.push(`${f.name} (no values)`);
      else if (f.range[0] === f.range[1]) out.push(`${f.name} (one value, ${f.range[0]})`);
    }
  return out;
}
