/**
 * The rows of one log file of any format the nightly pipeline takes: CSV and JSONL (optionally
 * gzipped) and Parquet. CSV goes through the trainer's own reader (../data/read-rows.ts), so a
 * CSV row reads the same here as in training; JSONL lines go through the trainer's line parser
 * (parseJsonLine) in a loop of their own here, because the trainer stops at the first line that
 * is not JSON, where a day's log (one cut off mid-line) should have that line skipped and counted
 * like any other bad row; Parquet rows are read a row group at a time, so a day's file never sits
 * in memory decoded whole.
 */
import { stat } from "node:fs/promises";
import { basename } from "node:path";
import { createInterface } from "node:readline";
import * as zlib from "node:zlib";
import {
  asyncBufferFromFile,
  type Compressors,
  type FileMetaData,
  parquetMetadataAsync,
  parquetReadObjects,
} from "hyparquet";
import type { DatasetSpec } from "../../shared/spec.ts";
import {
  DataError,
  jsonLineRules,
  openText,
  parseJsonLine,
  type RawRecord,
  readRecords,
  type SourceRecord,
} from "../data/read-rows.ts";

/** How a file's rows are laid out. */
export type FileFormat = "csv" | "jsonl" | "parquet";

/** The extensions a data file may have (each also with .gz, except Parquet). */
export const DATA_EXTENSIONS = [".csv", ".tsv", ".jsonl", ".ndjson", ".json", ".parquet", ".parq"] as const;

/**
 * A file's format from its extension (.gz aside), else the spec's: a log named without one
 * (`part-0001`) is read as the spec says its logs are.
 */
export function formatOf(file: string, fallback: DatasetSpec["format"]): FileFormat {
  const name = basename(file).toLowerCase().replace(/\.gz$/, "");
  if (name.endsWith(".parquet") || name.endsWith(".parq")) return "parquet";
  // .json too: Spark and pandas write JSON lines under it (a file holding one array fails as bad lines).
  if (name.endsWith(".jsonl") || name.endsWith(".ndjson") || name.endsWith(".json")) return "jsonl";
  if (name.endsWith(".csv") || name.endsWith(".tsv")) return "csv";
  return fallback;
}

/** Whether a file name has one of DATA_EXTENSIONS (with or without .gz). */
export function isDataFileName(name: string): boolean {
  const lower = name.toLowerCase().replace(/\.gz$/, "");
  return DATA_EXTENSIONS.some((ext) => lower.endsWith(ext));
}

/**
 * The records of one file in its format, each with its 1-based line (for Parquet: its row
 * number); a row that cannot be parsed comes with `problem` set, for the caller's error budget.
 * A missing or unreadable file is a DataError naming it.
 */
export async function* readFileRows(file: string, spec: DatasetSpec): AsyncGenerator<SourceRecord> {
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    info = await stat(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new DataError(code === "ENOENT" ? `${file}: no such data file` : `${file}: cannot read (${code})`);
  }
  if (!info.isFile()) throw new DataError(`${file}: not a file`);
  const format = formatOf(file, spec.format);
  if (format === "parquet") yield* readParquet(file);
  else if (format === "jsonl") yield* readJsonl(file, spec);
  else yield* readRecords(file, { ...spec, format: "csv" });
}

/** Every line a record or a bad row: a line that is no JSON object is one more bad row here. */
async function* readJsonl(file: string, spec: DatasetSpec): AsyncGenerator<SourceRecord> {
  const rules = jsonLineRules(spec);
  const lines = createInterface({ input: openText(file), crlfDelay: Number.POSITIVE_INFINITY });
  let line = 0;
  try {
    for await (const text of lines) {
      line++;
      const row = parseJsonLine(text, line, rules);
      if (row === undefined) continue;
      const { record, problem } = row;
      yield problem === undefined ? { record, line } : { record, line, problem };
    }
  } catch (error) {
    throw new DataError(`${file}: cannot read: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/**
 * Codecs beyond the Snappy hyparquet has built in, from node:zlib (no extra dependency): gzip and
 * Brotli always, Zstandard where this Node has it (22.15 and later). LZ4 and LZO files fail
 * with hyparquet's error naming the codec, which readParquet puts after the file's name.
 */
function compressors(): Compressors {
  const out: Compressors = {
    GZIP: (input) => new Uint8Array(zlib.gunzipSync(input)),
    BROTLI: (input) => new Uint8Array(zlib.brotliDecompressSync(input)),
  };
  const zstd = (zlib as { zstdDecompressSync?: (input: Uint8Array) => Buffer }).zstdDecompressSync;
  if (zstd) out.ZSTD = (input) => new Uint8Array(zstd(input));
  return out;
}

async function* readParquet(file: string): AsyncGenerator<SourceRecord> {
  if (file.toLowerCase().endsWith(".gz"))
    throw new DataError(`${file}: a gzipped Parquet file cannot be read (Parquet compresses inside)`);
  const fail = (error: unknown): DataError =>
    new DataError(
      `${file}: not a readable Parquet file (${error instanceof Error ? error.message : String(error)})`,
    );
  let metadata: FileMetaData;
  let buffer: Awaited<ReturnType<typeof asyncBufferFromFile>>;
  try {
    buffer = await asyncBufferFromFile(file);
    metadata = await parquetMetadataAsync(buffer);
  } catch (error) {
    throw fail(error);
  }
  const codecs = compressors();
  let line = 0;
  let start = 0;
  for (const group of metadata.row_groups) {
    const end = start + Number(group.num_rows);
    let rows: Record<string, unknown>[];
    try {
      // One row group at a time: the largest unit Parquet writers buffer, so it fits in memory.
      rows = await parquetReadObjects({
        file: buffer,
        metadata,
        rowStart: start,
        rowEnd: end,
        compressors: codecs,
      });
    } catch (error) {
      throw fail(error);
    }
    for (const row of rows) {
      line++;
      yield { record: plainRecord(row), line };
    }
    start = end;
  }
}

/**
 * A Parquet row as the values a CSV or JSON log would hold, so the checks and the encoder read
 * it the same way and it survives JSON: INT64 (bigint) as a number when exact, else as its decimal
 * text (an id beyond 2^53 stays one category); timestamps as ISO text; bytes as hex.
 */
function plainRecord(row: Record<string, unknown>): RawRecord {
  // fromEntries defines own properties: a column named "__proto__" stays a column.
  return Object.fromEntries(Object.entries(row).map(([key, value]) => [key, plainValue(value)]));
}

function plainValue(value: unknown): unknown {
  if (typeof value === "bigint") {
    return value <= BigInt(Number.MAX_SAFE_INTEGER) && value >= BigInt(Number.MIN_SAFE_INTEGER)
      ? Number(value)
      : value.toString();
  }
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
  if (value instanceof Uint8Array) return Buffer.from(value).toString("hex");
  if (Array.isArray(value)) return value.map(plainValue);
  if (ArrayBuffer.isView(value)) return Array.from(value as unknown as ArrayLike<number>, plainValue);
  if (value !== null && typeof value === "object")
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plainValue(v)]));
  return value;
}
