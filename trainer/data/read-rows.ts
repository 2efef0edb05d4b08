/** Streams the records of a CSV or JSONL log as described by a dataset spec. */
import { createReadStream } from "node:fs";
import { createInterface } from "node:readline";
import { createGunzip } from "node:zlib";
import { parse } from "csv-parse";
import type { DatasetSpec } from "../../shared/spec.ts";

export type RawRecord = Record<string, unknown>;

export interface SourceRecord {
  record: RawRecord;
  /** 1-based line in the file where the record starts (for error messages). */
  line: number;
}

export class DataError extends Error {
  override name = "DataError";
}

function open(file: string): NodeJS.ReadableStream {
  const stream = createReadStream(file);
  return file.endsWith(".gz") ? stream.pipe(createGunzip()) : stream;
}

/** What reading needs of a spec: the file layout, not the features or tasks. */
export type ReadOptions = Pick<DatasetSpec, "format" | "delimiter" | "header" | "columns">;

export async function* readRecords(file: string, spec: ReadOptions): AsyncGenerator<SourceRecord> {
  if (spec.format === "jsonl") yield* readJsonl(file);
  else yield* readCsv(file, spec);
}

async function* readCsv(file: string, spec: ReadOptions): AsyncGenerator<SourceRecord> {
  const parser = open(file).pipe(
    parse({
      delimiter: spec.delimiter,
      columns: spec.header ? true : spec.columns,
      trim: false,
      skip_empty_lines: true,
      relax_column_count: false,
      info: true,
    }),
  );
  try {
    for await (const item of parser as AsyncIterable<{ record: RawRecord; info: { lines: number } }>) {
      yield { record: item.record, line: item.info.lines };
    }
  } catch (error) {
    throw new DataError(`${file}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

async function* readJsonl(file: string): AsyncGenerator<SourceRecord> {
  const lines = createInterface({ input: open(file), crlfDelay: Number.POSITIVE_INFINITY });
  let line = 0;
  for await (const text of lines) {
    line++;
    if (text.trim() === "") continue;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw new DataError(`${file}:${line}: not valid JSON`);
    }
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      throw new DataError(`${file}:${line}: expected a JSON object per line`);
    }
    yield { record: value as RawRecord, line };
  }
}
