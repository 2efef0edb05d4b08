/**
 * The pipeline's data step in one pass over the day's files: resolve them, check every row
 * against the spec, write the good rows to one JSONL file and gather the stats (own and on the
 * champion's bins) as they go by. What the trainer then reads is that file with a copy of the
 * spec that says "jsonl" (./data.ts says why the pipeline converts rather than extend the trainer).
 */
import { mkdir, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { DatasetSpec } from "../../shared/spec.ts";
import { DataError, type RawRecord } from "../data/read-rows.ts";
import type { DataStats } from "./contracts.ts";
import { checkData, type DataCheck, type ResolveOptions, resolveDataFiles } from "./data.ts";
import { statsCollector } from "./stats.ts";

/** Options of prepareData. */
export interface PrepareOptions extends ResolveOptions {
  /** The run's own folder: rows.jsonl and spec.json are written here (and s3:// downloads). */
  workDir: string;
  /** Bad rows to skip and count before the run stops (pipeline.json data.maxBadRows). */
  maxBadRows: number;
  /** The champion's stats (readDataStats of its model directory), for statsOnReference. */
  reference?: DataStats;
  /** Called with every kept row as it is read (the holdout overlap check, ./overlap.ts). */
  onRow?: (record: RawRecord) => void;
}

/** The day's data, ready to train on. */
export interface PreparedDay {
  /** The data files read, in order. */
  files: string[];
  /** Each file's size and modification time before it was read (see unchangedSince). */
  read: FileState[];
  /** The good rows, one JSON object a line, in file order: the trainer's `data`. */
  data: string;
  /** The spec with `format: "jsonl"`, defaults filled in: the trainer's `spec`. */
  spec: string;
  check: DataCheck;
  /** The day's stats on its own deciles: write them beside the model trained on it. */
  stats: DataStats;
  /** With `reference`: the day's stats on the reference's bins and categories, for driftReport. */
  statsOnReference?: DataStats;
}

/** Resolves, checks and converts a day's data (see the module comment). */
export async function prepareData(
  source: string,
  spec: DatasetSpec,
  options: PrepareOptions,
): Promise<PreparedDay> {
  const files = await resolveDataFiles(source, options);
  await mkdir(options.workDir, { recursive: true });
  const read = await Promise.all(files.map(fileState));
  const data = join(options.workDir, "rows.jsonl");
  const collector = statsCollector(spec);
  const check = await checkData(files, spec, {
    maxBadRows: options.maxBadRows,
    source,
    out: data,
    onRow: (record, labels) => {
      collector.add(record, labels);
      options.onRow?.(record);
    },
  });
  await unchangedSince(read);
  const specFile = join(options.workDir, "spec.json");
  await writeFile(specFile, `${JSON.stringify({ ...spec, format: "jsonl" }, null, 2)}\n`);
  return {
    files,
    read,
    data,
    spec: specFile,
    check,
    stats: collector.finish(),
    ...(options.reference ? { statsOnReference: collector.finish(options.reference) } : {}),
  };
}

/** A data file's size and last modification, as stat gives them. */
export interface FileState {
  path: string;
  bytes: number;
  modifiedMs: number;
}

async function fileState(path: string): Promise<FileState> {
  const info = await stat(path);
  return { path, bytes: info.size, modifiedMs: info.mtimeMs };
}

/**
 * Throws a DataError naming the first file whose size or modification time is not what `before`
 * holds. A writer that appends to a file while the run reads it would leave the run's rows and its
 * record's sha256 of the file (./delivered.ts) describing different bytes: the next run would find
 * the file "delivered again" and never train on the rows the first one missed.
 */
export async function unchangedSince(before: readonly FileState[]): Promise<void> {
  for (const was of before) {
    const now = await stat(was.path).catch(() => undefined);
    if (now?.size === was.bytes && now.mtimeMs === was.modifiedMs) continue;
    const what = now
      ? `${was.bytes} bytes before, ${now.size} now${now.size === was.bytes ? " (rewritten)" : ""}`
      : "gone since";
    throw new DataError(
      `${was.path} changed while the run read it (${what}); nothing was trained on it: run again once its writer has finished (data.complete waits for that)`,
    );
  }
}
