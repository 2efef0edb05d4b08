/** Streams the records of a CSV or JSONL log as described by a dataset spec. */
import { createReadStream } from "node:fs";
import { createInterface } from "node:readline";
import { type Duplex, pipeline, type Readable } from "node:stream";
import { createGunzip } from "node:zlib";
import { parse } from "csv-parse";
import type { DatasetSpec } from "../../shared/spec.ts";

export type RawRecord = Record<string, unknown>;

export interface SourceRecord {
  record: RawRecord;
  /** 1-based line in the file where the record starts (for error messages). */
  line: number;
  /**
   * Why the row is malformed, when it is: a CSV row with more or fewer fields than the header
   * (a log cut off mid-line). Readers that check rows make it a DataError, within the error budget.
   */
  problem?: string;
}

export class DataError extends Error {
  override name = "DataError";
}

/**
 * The file's bytes (gunzipped for .gz) through `then`, if given. pipeline, not pipe: pipe does not
 * pass a source's error on, so a missing file or a corrupt .gz was an unhandled stream error that
 * killed the process instead of the error readers turn into one line.
 */
function open(file: string, then?: Duplex): Readable {
  const stages: (Readable | Duplex)[] = [createReadStream(file)];
  if (file.endsWith(".gz")) stages.push(createGunzip());
  if (then) stages.push(then);
  if (stages.length === 1) return stages[0]!;
  // Errors reach the caller through the last stage, destroyed with them.
  return pipeline(stages as [Readable, ...Duplex[]], () => {}) as unknown as Readable;
}

/** What reading needs of a spec: the file layout, not the features or tasks. */
export type ReadOptions = Pick<DatasetSpec, "format" | "delimiter" | "header" | "columns">;

export async function* readRecords(file: string, spec: ReadOptions): AsyncGenerator<SourceRecord> {
  if (spec.format === "jsonl") yield* readJsonl(file);
  else yield* readCsv(file, spec);
}

async function* readCsv(file: string, spec: ReadOptions): AsyncGenerator<SourceRecord> {
  const parser = open(
    file,
    parse({
      delimiter: spec.delimiter,
      columns: spec.header ? true : spec.columns,
      // A byte-order mark (spreadsheet exports) would otherwise stick to the first column's name.
      bom: true,
      trim: false,
      skip_empty_lines: true,
      // Ragged rows come through (flagged below), so the error budget can skip them.
      relax_column_count: true,
      info: true,
    }),
  );
  let ragged = 0;
  try {
    for await (const item of parser as AsyncIterable<{
      record: RawRecord;
      info: { lines: number; invalid_field_length: number };
    }>) {
      const { lines, invalid_field_length } = item.info;
      if (invalid_field_length === ragged) {
        yield { record: item.record, line: lines };
        continue;
      }
      ragged = invalid_field_length;
      yield {
        record: item.record,
        line: lines,
        problem: "the row does not have one field per column of the header",
      };
    }
  } catch (error) {
    throw new DataError(`${file}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

async function* readJsonl(file: string): AsyncGenerator<SourceRecord> {
  const lines = createInterface({ input: open(file), crlfDelay: Number.POSITIVE_INFINITY });
  let line = 0;
  try {
    for await (const text of lines) {
      line++;
      if (text.trim() === "") continue;
      yield { record: jsonRecord(line === 1 ? text.replace(/^\uFEFF/, "") : text, file, line), line };
    }
  } catch (error) {
    if (error instanceof DataError) throw error;
    throw new DataError(`${file}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

function jsonRecord(text: string, file: string, line: number): RawRecord {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new DataError(`${file}:${line}: not valid JSON`);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value))
    throw new DataError(`${file}:${line}: expected a JSON object per line`);
  return value as RawRecord;
}
