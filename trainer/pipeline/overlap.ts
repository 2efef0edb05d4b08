/**
 * Whether the day's data holds the frozen holdout's rows (pipeline.json evaluation.holdout). A
 * candidate trained on rows it is then judged on wins the gate without being better, and warm
 * starting carries the leak into every later run; so a run whose data is, or overlaps, the
 * holdout fails before training.
 *
 * When the config alone shows it (configOverlap: the holdout is data.source, lies in its folder or
 * matches its glob), the config is refused as it is read, before anything is downloaded or
 * trained. At run time, two checks: a data file that is the holdout file itself (the same resolved path, or the same
 * sha256: a copy), and rows: every holdout row's content is hashed to 64 bits once (a Set of
 * bigints, memory in proportion to the holdout, not the day), and each of the day's rows is
 * looked up as it is read, in the data step's one pass. A row's content is the columns the spec
 * reads (features, label columns, group), each value written one way whatever the file's
 * format: the number 1.5, the text "1.5" and " 1.5 " are the same value, and a missing value is
 * one value. Two genuinely different rows that agree on every one of those columns count as
 * overlap too, which is why a small share is allowed (HOLDOUT_OVERLAP_MAX).
 */
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { realpath } from "node:fs/promises";
import { basename, dirname, matchesGlob, resolve } from "node:path";
import { decimalOf } from "../../shared/encoder/values.ts";
import type { DatasetSpec } from "../../shared/spec.ts";
import type { RawRecord } from "../data/read-rows.ts";
import { isDataFileName } from "./rows.ts";

/** The largest share of the holdout's distinct rows the day may also hold: 1 %. */
export const HOLDOUT_OVERLAP_MAX = 0.01;

/** What the row check found, for the record. */
export interface HoldoutOverlap {
  /** Distinct rows of the holdout (by content). */
  holdoutRows: number;
  /** Of those, how many the day's data also holds. */
  holdoutRowsInData: number;
  /** holdoutRowsInData / holdoutRows. */
  share: number;
  /** The day's rows that are one of the holdout's (a row repeated in the day counts each time). */
  dataRows: number;
}

/** The columns whose values make a row's content: what the spec reads. */
export function contentColumns(spec: DatasetSpec): string[] {
  const columns = new Set<string>(spec.features.map((f) => f.name));
  for (const t of spec.tasks) columns.add(t.column);
  if (spec.group !== undefined) columns.add(spec.group);
  return [...columns].sort();
}

/** Collects the holdout's row hashes, then counts the day's rows that are among them. */
export class HoldoutRows {
  private readonly columns: string[];
  private readonly missing: Set<string>;
  private readonly holdout = new Set<bigint>();
  private readonly seen = new Set<bigint>();
  private dataRows = 0;

  constructor(spec: DatasetSpec) {
    this.columns = contentColumns(spec);
    this.missing = new Set(spec.missing);
  }

  /** One row of the holdout. */
  addHoldout(record: RawRecord): void {
    this.holdout.add(this.hash(record));
  }

  /** One row of the day's data. */
  countData(record: RawRecord): void {
    const h = this.hash(record);
    if (!this.holdout.has(h)) return;
    this.dataRows++;
    this.seen.add(h);
  }

  result(): HoldoutOverlap {
    const holdoutRows = this.holdout.size;
    return {
      holdoutRows,
      holdoutRowsInData: this.seen.size,
      share: holdoutRows === 0 ? 0 : this.seen.size / holdoutRows,
      dataRows: this.dataRows,
    };
  }

  private hash(record: RawRecord): bigint {
    const text = this.columns.map((c) => this.canonical(record[c])).join("\u001f");
    return createHash("sha256").update(text).digest().readBigUInt64LE(0);
  }

  private canonical(value: unknown): string {
    if (value === null || value === undefined) return "\u0000";
    if (typeof value === "number") return String(value);
    if (typeof value === "string") {
      const text = value.trim();
      if (this.missing.has(text) || this.missing.has(value)) return "\u0000";
      const n = decimalOf(text);
      return Number.isFinite(n) ? String(n) : text;
    }
    return JSON.stringify(value) ?? String(value);
  }
}

/**
 * Why the day's data, as the config names it, would hold the holdout file, or undefined when the
 * paths alone cannot tell: `source` (data.source) and `holdout` (evaluation.holdout) are
 * absolute, as config.ts resolves them. Decided by the rules data.ts resolveDataFiles lists files
 * by: a file source is that file; a folder source holds its own data files, not its subfolders',
 * nor names starting with "." or "_"; a glob (a source with glob characters that is no file or
 * folder) its matches, but names starting with "." or "_". An s3:// source is never a local
 * holdout. Links and copies are left to the run (checkHoldoutFile), which reads the files.
 */
export function configOverlap(source: string, holdout: string): string | undefined {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(source)) return undefined;
  const name = basename(holdout);
  const hidden = name.startsWith(".") || name.startsWith("_");
  if (holdout === source) return "is data.source itself";
  if (dirname(holdout) === source && !hidden && isDataFileName(name))
    return `lies in data.source's folder ${source}, whose data files are the day's`;
  if (/[*?[{]/.test(source) && !existsSync(source) && !hidden && matchesGlob(holdout, source))
    return `matches data.source's glob ${source}`;
  return undefined;
}

/**
 * Throws when one of the day's `files` is the holdout file: the same path once links are
 * resolved, or the same bytes (sha256). `sha256` maps each path (the holdout's included) to its
 * digest, as the record has them.
 */
export async function checkHoldoutFile(
  holdout: string,
  files: readonly string[],
  sha256: ReadonlyMap<string, string>,
): Promise<void> {
  const real = (p: string) => realpath(p).catch(() => resolve(p));
  const holdoutPath = await real(holdout);
  const holdoutHash = sha256.get(holdout);
  for (const file of files) {
    const why =
      (await real(file)) === holdoutPath
        ? "is"
        : holdoutHash !== undefined && sha256.get(file) === holdoutHash
          ? "has the same sha256 as"
          : undefined;
    if (why)
      throw new Error(
        `the day's data file ${file} ${why} the frozen holdout (evaluation.holdout ${holdout}): a candidate trained on it would be judged on rows it has seen; keep the holdout out of data.source`,
      );
  }
}

/** The error for a row overlap past HOLDOUT_OVERLAP_MAX, naming the files and the share. */
export function overlapError(overlap: HoldoutOverlap, holdout: string, files: readonly string[]): Error {
  const pct = (overlap.share * 100).toFixed(1);
  return new Error(
    `${pct}% of the frozen holdout's rows (${overlap.holdoutRowsInData} of ${overlap.holdoutRows} in ${holdout}) are also in the day's data (${overlap.dataRows} rows of ${files.join(", ")}), over the ${HOLDOUT_OVERLAP_MAX * 100}% allowed: a candidate trained on them would be judged on rows it has seen; take them out of data.source or cut a new holdout`,
  );
}
