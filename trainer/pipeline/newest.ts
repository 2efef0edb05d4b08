/**
 * The newest slice of the day's data (pipeline.json evaluation.newest): both models are also
 * scored on it, beside the frozen holdout, to show what changed lately. Cut from the prepared
 * JSONL file (prepare.ts), one JSON object a line, so a line is a row.
 */
import { createReadStream } from "node:fs";
import { writeFile } from "node:fs/promises";
import { createInterface } from "node:readline";
import { decimalOf } from "../../shared/encoder/values.ts";
import type { NewestSliceConfig } from "./config.ts";

export interface NewestSlice {
  /** The slice as JSONL, beside the prepared data. */
  file: string;
  rows: number;
  /** For the record: which rows these are. */
  description: string;
}

async function* lines(file: string): AsyncGenerator<string> {
  const input = createInterface({
    input: createReadStream(file, "utf8"),
    crlfDelay: Number.POSITIVE_INFINITY,
  });
  for await (const line of input) if (line.trim() !== "") yield line;
}

/** A time in ms: numbers as unix seconds or ms, other text as a date; NaN when unreadable. */
function timeOf(value: unknown, numbers: "seconds" | "milliseconds"): number {
  if (typeof value === "number") return numbers === "seconds" ? value * 1000 : value;
  const text = String(value ?? "").trim();
  if (text === "") return Number.NaN;
  const n = decimalOf(text);
  if (Number.isFinite(n)) return numbers === "seconds" ? n * 1000 : n;
  return Date.parse(text);
}

/** Writes the slice to `out`; undefined when it would hold no row. */
export async function newestSlice(
  data: string,
  slice: NewestSliceConfig,
  out: string,
): Promise<NewestSlice | undefined> {
  let kept: string[];
  let description: string;
  if ("rows" in slice) {
    // A ring of the last N lines: one pass, memory bounded by the slice.
    const ring: string[] = [];
    let seen = 0;
    for await (const line of lines(data)) {
      ring[seen % slice.rows] = line;
      seen++;
    }
    const start = seen > slice.rows ? seen % slice.rows : 0;
    kept = [...ring.slice(start), ...ring.slice(0, start)];
    description = `the last ${kept.length} rows of ${seen} in the new data, in file order`;
  } else {
    const { timeColumn, hours, numbers } = slice;
    let newest = Number.NEGATIVE_INFINITY;
    let present = 0;
    for await (const line of lines(data)) {
      const row = JSON.parse(line) as Record<string, unknown>;
      if (Object.hasOwn(row, timeColumn)) present++;
      const t = timeOf(row[timeColumn], numbers);
      if (t > newest) newest = t;
    }
    // A slice the config asks for and the data cannot give is the config's error, not a rule
    // later refused as "not measured" with no word of why.
    if (!Number.isFinite(newest))
      throw new Error(
        present === 0
          ? `evaluation.newest.timeColumn: no row of the new data has a column "${timeColumn}"`
          : `evaluation.newest.timeColumn: no value of column "${timeColumn}" reads as a time (${present} rows have the column)`,
      );
    const from = newest - hours * 3_600_000;
    kept = [];
    for await (const line of lines(data)) {
      const t = timeOf((JSON.parse(line) as Record<string, unknown>)[timeColumn], numbers);
      if (t > from) kept.push(line);
    }
    description = `rows whose ${timeColumn} is within ${hours} h of the newest (${new Date(newest).toISOString()}): ${kept.length}`;
  }
  if (kept.length === 0) return undefined;
  await writeFile(out, `${kept.join("\n")}\n`);
  return { file: out, rows: kept.length, description };
}
