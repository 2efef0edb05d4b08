/**
 * The newest slice of the day's data (pipeline.json evaluation.newest): both models are also
 * scored on it, beside the frozen holdout, to show what changed lately. Cut from the prepared
 * JSONL file (prepare.ts), one JSON object a line, so a line is a row.
 *
 * The slice is held out of training: the day's rows are split into the slice and the rest, and
 * the candidate trains on the rest only. Scored on rows it trained on (or early-stopped on)
 * and the champion never saw, the candidate would lead by its fit to them, not by being better
 * (a gate rule "on": "newest" read that lead as a real one). The cost is that the newest rows
 * are not learnt from this run, so the slice should stay a small part of the day: one over
 * half the day fails the run.
 */
import { once } from "node:events";
import { createReadStream, createWriteStream, type WriteStream } from "node:fs";
import { rm } from "node:fs/promises";
import { createInterface } from "node:readline";
import { decimalOf } from "../../shared/encoder/values.ts";
import type { NewestSliceConfig } from "./config.ts";

export interface NewestSlice {
  /** The slice as JSONL, beside the prepared data. */
  file: string;
  rows: number;
  /** For the record: which rows these are. */
  description: string;
  /** The day's other rows, in file order: what the candidate trains on. */
  train: { file: string; rows: number };
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

/**
 * Splits the day's rows (`data`) into the newest slice (`out.newest`) and the rest
 * (`out.train`), both in file order; two passes, memory bounded by neither. Undefined when the
 * slice would hold no row (nothing is written: train on `data`). Throws when it would hold over
 * half the day's rows.
 */
export async function splitNewest(
  data: string,
  slice: NewestSliceConfig,
  out: { newest: string; train: string },
): Promise<NewestSlice | undefined> {
  let total = 0;
  let isNewest: (row: string, index: number) => boolean;
  let description: (rows: number) => string;
  if ("rows" in slice) {
    for await (const _ of lines(data)) total++;
    const first = Math.max(0, total - slice.rows);
    isNewest = (_, index) => index >= first;
    description = (rows) => `the last ${rows} rows of ${total} in the new data, in file order`;
  } else {
    const { timeColumn, hours, numbers } = slice;
    let newest = Number.NEGATIVE_INFINITY;
    let present = 0;
    for await (const line of lines(data)) {
      total++;
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
    // A row whose time does not read is not known to be new: it is trained on.
    isNewest = (line) => timeOf((JSON.parse(line) as Record<string, unknown>)[timeColumn], numbers) > from;
    description = (rows) =>
      `rows whose ${timeColumn} is within ${hours} h of the newest (${new Date(newest).toISOString()}): ${rows}`;
  }

  const newestOut = createWriteStream(out.newest);
  const trainOut = createWriteStream(out.train);
  let rows = 0;
  let index = 0;
  try {
    for await (const line of lines(data)) {
      const newest = isNewest(line, index++);
      if (newest) rows++;
      // Past half the day (known only now for a time slice) the run fails: count, write no more.
      if (rows * 2 <= total) await write(newest ? newestOut : trainOut, `${line}\n`);
    }
    await Promise.all([close(newestOut), close(trainOut)]);
  } catch (error) {
    newestOut.destroy();
    trainOut.destroy();
    await Promise.all([rm(out.newest, { force: true }), rm(out.train, { force: true })]);
    throw error;
  }
  if (rows === 0 || rows * 2 > total) {
    await Promise.all([rm(out.newest, { force: true }), rm(out.train, { force: true })]);
    if (rows === 0) return undefined;
    throw new Error(
      `evaluation.newest: the newest slice would hold ${rows} of the day's ${total} rows, which the candidate does not train on; over half the day is left out of training: ask for fewer rows or hours`,
    );
  }
  return {
    file: out.newest,
    rows,
    description: `${description(rows)}, held out of training`,
    train: { file: out.train, rows: total - rows },
  };
}

async function write(stream: WriteStream, text: string): Promise<void> {
  if (!stream.write(text)) await once(stream, "drain");
}

async function close(stream: WriteStream): Promise<void> {
  stream.end();
  await once(stream, "finish");
}
