/**
 * The nightly pipeline's new data: where the day's files are (resolveDataFiles) and whether they
 * read against the dataset spec (checkData). Formats: CSV and JSONL, optionally gzipped, and
 * Parquet (./rows.ts), by extension, else the spec's `format`; files are read in name order, as
 * one log.
 *
 * The trainer reads one CSV or JSONL file (../data/read-rows.ts), two or three times over
 * (../data/encode-dataset.ts). Rather than teach it Parquet and lists of files, the pipeline
 * writes the day's good rows, once, to one JSONL file in its work folder and trains on that
 * (./prepare.ts): the trainer stays as it is, JSONL carries Parquet's typed values (numbers,
 * nulls, lists) where CSV would turn them into text, the trainer's repeated passes read plain
 * text rather than decode Parquet each time, and the file is a record of exactly what was trained
 * on.
 */
import { once } from "node:events";
import { createWriteStream, type WriteStream } from "node:fs";
import * as fsp from "node:fs/promises";
import { basename, dirname, join, normalize, sep } from "node:path";
import type { S3Client } from "@aws-sdk/client-s3";
import type { DatasetSpec } from "../../shared/spec.ts";
import { ColumnError, recordChecker } from "../data/check-record.ts";
import { DataError, type RawRecord } from "../data/read-rows.ts";
import {
  type CompleteInput,
  type Completeness,
  type CompleteRule,
  globOwns,
  judgeComplete,
  localFolders,
  NotReadyError,
  s3Folders,
} from "./complete.ts";
import { DATA_EXTENSIONS, type FileFormat, formatOf, isDataFileName, readFileRows } from "./rows.ts";
import { downloadS3, listS3, type S3Listing } from "./s3-source.ts";

/** Options of resolveDataFiles. */
export interface ResolveOptions {
  /** Where an s3:// source's objects are downloaded to (under `s3/<bucket>/`); required for one. */
  workDir?: string;
  /**
   * The S3 client to list and download with (another endpoint, a test server); default: one
   * made from the environment's AWS_* variables (./s3-source.ts s3ClientFromEnv).
   */
  s3?: S3Client;
  /**
   * pipeline.json data.complete: the source must be complete (./complete.ts) when it is listed,
   * before a file is read or downloaded; otherwise resolveDataFiles throws NotReadyError. The
   * marker's name is then never a data file.
   */
  complete?: CompleteRule;
  /** The clock the quiet period is measured by (tests); default Date.now. */
  now?: () => number;
}

/**
 * The data files a source names, in the order they are read (their names', as code units):
 *   a file          itself (read by its extension, else the spec's format)
 *   a folder        its data files (DATA_EXTENSIONS, optionally .gz), not its subfolders
 *   a glob          the files it matches ("logs/2024-06-0[1-7]/*.parquet", node's fs.glob)
 *   s3://bucket/p   the data files under the key prefix p, downloaded into options.workDir
 * Files named with a leading "." or "_" are left out of folders, globs and prefixes: Spark and
 * Hadoop write _SUCCESS markers and .crc checksums beside their parts. A folder, glob or prefix
 * with no data file is an empty day, "no rows in <source>"; a missing file or folder is an error
 * naming it. With options.complete, a source that is not complete (a missing source or one with
 * no data file among them, unless its marker says the day is whole) is a NotReadyError instead.
 */
export async function resolveDataFiles(source: string, options: ResolveOptions = {}): Promise<string[]> {
  const complete = options.complete;
  if (source.startsWith("s3://")) {
    if (options.workDir === undefined)
      throw new DataError(`${source}: an s3:// source needs a work folder to download into`);
    const files = await downloadS3(source, options.workDir, options.s3, {
      ...(complete?.marker !== undefined ? { exclude: complete.marker } : {}),
      ...(complete
        ? {
            check: async (listing) => {
              const found = await judgeComplete(s3Input(source, listing, complete, now(options)));
              if (!found.ready) throw new NotReadyError(found);
            },
          }
        : {}),
    });
    if (files.length === 0) throw new DataError(`no rows in ${source}: no data files under the prefix`);
    return files;
  }
  const listing = await listLocal(source, complete?.marker);
  if (complete) {
    const found = await judgeComplete(localInput(source, listing, complete, now(options)));
    if (!found.ready) throw new NotReadyError(found);
  }
  if (listing.files.length > 0) return listing.files.map((f) => f.path);
  switch (listing.kind) {
    case "missing":
      throw new DataError(`${source}: no such data file or folder`);
    case "folder":
      throw new DataError(`no rows in ${source}: no data files (${DATA_EXTENSIONS.join(", ")}, or .gz)`);
    default:
      throw new DataError(`no rows in ${source}: no file matches`);
  }
}

/**
 * Whether `source` is complete under `rule` (./complete.ts), from a listing alone: nothing is
 * read or downloaded. The run asks before it takes the lock; resolveDataFiles asks again of the
 * listing it reads, so nothing that arrived in between is read unchecked.
 */
export async function sourceCompleteness(
  source: string,
  rule: CompleteRule,
  options: Pick<ResolveOptions, "s3" | "now"> = {},
): Promise<Completeness> {
  if (source.startsWith("s3://"))
    return judgeComplete(s3Input(source, await listS3(source, options.s3, rule.marker), rule, now(options)));
  return judgeComplete(localInput(source, await listLocal(source, rule.marker), rule, now(options)));
}

function now(options: Pick<ResolveOptions, "now">): number {
  return (options.now ?? Date.now)();
}

/** A local source's data files, with their mtimes; empty when there is none (or no source). */
interface LocalListing {
  kind: "file" | "folder" | "glob" | "missing";
  files: { path: string; modifiedMs: number }[];
  /** Which folders above a file's own may hold its marker (./complete.ts localFolders). */
  inside: (folder: string) => boolean;
}

async function listLocal(source: string, exclude: string | undefined): Promise<LocalListing> {
  const info = await fsp.stat(source).catch(() => undefined);
  if (info?.isFile())
    return { kind: "file", files: [{ path: source, modifiedMs: info.mtimeMs }], inside: none };
  // stat, not a directory entry's type: a symlinked part counts as the file it points to.
  const fileAt = async (path: string) => {
    const found = await fsp.stat(path).catch(() => undefined);
    return found?.isFile() ? { path, modifiedMs: found.mtimeMs } : undefined;
  };
  if (info?.isDirectory()) {
    const files: LocalListing["files"] = [];
    for (const name of await fsp.readdir(source)) {
      if (!isListed(name) || name === exclude) continue;
      const file = await fileAt(join(source, name));
      if (file) files.push(file);
    }
    return { kind: "folder", files: files.sort(byPath), inside: none };
  }
  if (!/[*?[{]/.test(source)) return { kind: "missing", files: [], inside: none };
  // Looked up at run time: a Node without fs.glob (before 22) still reads files and folders.
  const glob = (fsp as { glob?: (pattern: string) => AsyncIterable<string> }).glob;
  if (glob === undefined) throw new DataError(`${source}: a glob needs Node 22 or later (fs.glob)`);
  const files: LocalListing["files"] = [];
  for await (const path of glob(source)) {
    const name = basename(path);
    if (name.startsWith(".") || name.startsWith("_") || name === exclude) continue;
    const file = await fileAt(path);
    if (file) files.push(file);
  }
  return { kind: "glob", files: files.sort(byPath), inside: globOwns(source) };
}

const none = () => false;

function localInput(source: string, listing: LocalListing, rule: CompleteRule, at: number): CompleteInput {
  // A folder source's files are named below it in messages, other sources' by their paths; its
  // marker beside no data file says the day is complete and empty.
  const root = listing.kind === "folder" ? normalize(source) : undefined;
  const folder = root === undefined ? undefined : root.endsWith(sep) ? root : `${root}${sep}`;
  return {
    source,
    rule,
    now: at,
    files: listing.files.map((f) => ({
      name: f.path,
      modifiedMs: f.modifiedMs,
      folders: localFolders(dirname(f.path), listing.inside),
    })),
    hasMarker: async (dir) =>
      rule.marker !== undefined &&
      ((await fsp.stat(join(dir, rule.marker)).catch(() => undefined))?.isFile() ?? false),
    ...(listing.files.length === 0
      ? {
          empty: {
            why:
              listing.kind === "missing"
                ? "does not exist"
                : listing.kind === "glob"
                  ? "matches no data file"
                  : "holds no data file",
            ...(root !== undefined ? { root } : {}),
          },
        }
      : {}),
    ...(folder !== undefined
      ? { show: (name: string) => (name.startsWith(folder) ? name.slice(folder.length) : name) }
      : {}),
  };
}

function s3Input(source: string, listing: S3Listing, rule: CompleteRule, at: number): CompleteInput {
  const { bucket, prefix, keys } = listing;
  const url = `s3://${bucket}/`;
  // The folder the prefix names, whose marker says an empty day is complete.
  const root = prefix === "" || prefix.endsWith("/") ? prefix : `${prefix}/`;
  return {
    source,
    rule,
    now: at,
    files: listing.objects.map((o) => ({
      name: `${url}${o.key}`,
      modifiedMs: o.modifiedMs,
      folders: s3Folders(bucket, o.key, prefix),
    })),
    hasMarker: async (folder) =>
      rule.marker !== undefined && keys.has(`${folder.slice(url.length)}${rule.marker}`),
    ...(listing.objects.length === 0
      ? { empty: { why: "holds no data object", root: `${url}${root}` } }
      : {}),
  };
}

/** A folder's entry that is one of the day's files: a data extension, not hidden or a marker. */
function isListed(name: string): boolean {
  return !name.startsWith(".") && !name.startsWith("_") && isDataFileName(name);
}

function byPath(a: { path: string }, b: { path: string }): number {
  return byName(a.path, b.path);
}

function byName(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Options of checkData. */
export interface CheckOptions {
  /** Bad rows to skip (and count per reason) before the check fails; 0 fails at the first. */
  maxBadRows: number;
  /** What messages call the data (an empty day is "no rows in <source>"); default: the files. */
  source?: string;
  /** Writes every kept row here, one JSON object a line: the file the trainer then reads. */
  out?: string;
  /** Called with every kept row and its labels (spec.tasks order; NaN: masked), as it is read. */
  onRow?: (record: RawRecord, labels: readonly number[]) => void;
}

/** One file's part of a DataCheck. */
export interface FileCheck {
  file: string;
  format: FileFormat;
  /** Data rows read from the file, bad ones included. */
  rows: number;
  skipped: number;
}

/** What checkData found: rows read, kept and skipped, and why rows were skipped. */
export interface DataCheck {
  source: string;
  files: FileCheck[];
  /** Data rows read over all files, bad ones included. */
  rows: number;
  kept: number;
  skipped: number;
  /** Skipped rows per reason (badRowReason): `column "age": not a number` -> 12. */
  reasons: Record<string, number>;
  /** The first few skipped rows' messages, with file and line, for the log. */
  examples: string[];
}

const KEPT_EXAMPLES = 5;

/**
 * Reads `files` in order against the spec with the trainer's own checks (../data/check-record.ts),
 * skipping bad rows within `maxBadRows` over all files and counting them per reason. A missing
 * or unreadable file, a file without a column the spec needs, or one bad row past the budget is
 * a DataError naming the file (and line); a day with no good rows is "no rows in <source>".
 */
export async function checkData(
  files: readonly string[],
  spec: DatasetSpec,
  options: CheckOptions,
): Promise<DataCheck> {
  const source = options.source ?? (files.length > 0 ? files.join(", ") : "(no files)");
  const reasons = new Map<string, number>();
  const examples: string[] = [];
  const checks: FileCheck[] = [];
  let rows = 0;
  let kept = 0;
  let skipped = 0;
  const out = options.out === undefined ? undefined : await jsonlWriter(options.out);
  try {
    for (const file of files) {
      const format = formatOf(file, spec.format);
      // A Parquet schema names every column as a CSV header does, so a feature column missing
      // from it is the file's error, as in CSV; a JSON line may leave a missing value out.
      const checker = recordChecker(file, { ...spec, format: format === "jsonl" ? "jsonl" : "csv" });
      const check: FileCheck = { file, format, rows: 0, skipped: 0 };
      checks.push(check);
      for await (const row of readFileRows(file, spec)) {
        rows++;
        check.rows++;
        let labels: number[];
        try {
          labels = checker.check(row);
        } catch (error) {
          if (!(error instanceof DataError) || error instanceof ColumnError) throw error;
          skipped++;
          check.skipped++;
          const reason = badRowReason(error.message, file);
          reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
          if (skipped > options.maxBadRows)
            throw options.maxBadRows === 0
              ? error
              : new DataError(`${error.message} (over the error budget of ${options.maxBadRows} bad rows)`);
          if (examples.length < KEPT_EXAMPLES) examples.push(error.message);
          continue;
        }
        kept++;
        if (out) await out.write(row.record);
        options.onRow?.(row.record, labels);
      }
    }
    if (kept === 0) {
      throw new DataError(
        rows === 0
          ? `no rows in ${source}`
          : `no rows in ${source}: all ${rows} rows were bad (${[...reasons].map(([r, n]) => `${r}: ${n}`).join("; ")})`,
      );
    }
    await out?.close();
  } catch (error) {
    await out?.abort();
    throw error;
  }
  return {
    source,
    files: checks,
    rows,
    kept,
    skipped,
    reasons: Object.fromEntries([...reasons].sort((a, b) => b[1] - a[1])),
    examples,
  };
}

/**
 * A bad row's reason, for counting: the checker's message without the file, line and value, so
 * every row bad the same way counts under one key (`column "age": not a number`).
 */
export function badRowReason(message: string, file: string): string {
  const text = message.startsWith(`${file}:`)
    ? message.slice(file.length + 1).replace(/^\d+: /, "")
    : message;
  const column = /^column "(.+?)": (.*)$/s.exec(text);
  if (!column) return text;
  const [, name, rest] = column as unknown as [string, string, string];
  let kind = rest;
  if (rest.startsWith("missing label")) kind = "missing label";
  else if (rest.startsWith("no group id")) kind = "no group id";
  else if (rest.includes(" is not a binary label")) kind = "not a binary label";
  else if (rest.endsWith(" is out of range for log1p")) kind = "out of range for log1p";
  else if (rest.endsWith(" is not a number")) kind = "not a number";
  // Before the vector test: a bag's element message starts "element <i>: " too, and so does a
  // vector element past float32's range.
  else if (rest.includes(" is not a category (")) kind = "not a category";
  else if (rest.includes(" is too large")) kind = "too large for float32";
  else if (/^(expected \d+ numbers|element \d+: )/.test(rest))
    kind = "not a vector of the spec's dim numbers";
  return `column "${name}": ${kind}`;
}

interface JsonlWriter {
  write(record: RawRecord): Promise<void>;
  close(): Promise<void>;
  /** Stops writing and removes the partial file: a failed check leaves nothing to train on. */
  abort(): Promise<void>;
}

/** Buffered JSONL output that waits for the disk when it falls behind (a day can be GBs). */
async function jsonlWriter(path: string): Promise<JsonlWriter> {
  await fsp.mkdir(dirname(path), { recursive: true });
  const stream: WriteStream = createWriteStream(path);
  let failure: Error | undefined;
  stream.on("error", (error) => {
    failure = error;
  });
  let buffer = "";
  const flush = async () => {
    if (failure) throw failure;
    if (buffer === "") return;
    const text = buffer;
    buffer = "";
    if (!stream.write(text)) await once(stream, "drain");
  };
  return {
    async write(record) {
      buffer += `${JSON.stringify(record)}\n`;
      if (buffer.length >= 1 << 16) await flush();
    },
    async close() {
      await flush();
      stream.end();
      await once(stream, "finish");
      if (failure) throw failure;
    },
    async abort() {
      stream.destroy();
      await fsp.rm(path, { force: true });
    },
  };
}
