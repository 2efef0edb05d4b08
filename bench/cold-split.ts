/**
 * bench:quality --cold COLUMN: how a model scores values it never saw in training (new users,
 * new items), which every ranking system meets daily and a random split never tests. A tenth of
 * the column's values, chosen by a hash of the value, leave the training file; the test file keeps
 * only the rows that have one of them. Every model then trains and is scored on the same files.
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { fnv1a } from "../shared/encoder/hash.ts";
import { categoryOf, type ValueRules } from "../shared/encoder/values.ts";
import type { DatasetSpec } from "../shared/spec.ts";
import type { SuiteFiles } from "./suites.ts";
import { readTable, writeTable } from "./table-file.ts";

/** Values with fnv1a(value) % COLD_BUCKETS === 0 are held out: a tenth of them. */
const COLD_BUCKETS = 10;

/** Whether a value, read as the encoder reads a category (missing values are never held out), is held out. */
export function isCold(value: unknown, rules: ValueRules = { trim: true, missing: new Set([""]) }): boolean {
  const key = categoryOf(value, rules);
  return key !== null && fnv1a(key) % COLD_BUCKETS === 0;
}

/** The training file without the held-out values' rows, the test file with only theirs, in `dir`. */
export async function coldSplit(
  files: SuiteFiles,
  column: string,
  spec: Pick<DatasetSpec, "format" | "delimiter" | "trim" | "missing">,
  dir: string,
): Promise<SuiteFiles & { rows: { train: number; test: number } }> {
  await mkdir(dir, { recursive: true });
  const format = spec.format === "jsonl" ? "jsonl" : "csv";
  const train = join(dir, `train.${format}`);
  const test = join(dir, `test-cold.${format}`);
  const rules: ValueRules = { trim: spec.trim, missing: new Set(spec.missing) };
  const cold = (v: unknown) => isCold(v, rules);
  const kept = {
    train: await filterFile(files.train, train, column, format, spec.delimiter, (v) => !cold(v)),
    test: await filterFile(files.test, test, column, format, spec.delimiter, cold),
  };
  if (kept.test === 0) throw new Error(`--cold ${column}: no test row has a held-out value`);
  return { train, test, spec: files.spec, rows: kept };
}

async function filterFile(
  from: string,
  to: string,
  column: string,
  format: "csv" | "jsonl",
  delimiter: string,
  keep: (value: unknown) => boolean,
): Promise<number> {
  const table = await readTable(from, format, delimiter);
  if (table.format === "jsonl") {
    const kept = table.rows.filter((line) => keep((JSON.parse(line) as Record<string, unknown>)[column]));
    await writeTable(to, { ...table, rows: kept }, delimiter);
    return kept.length;
  }
  const at = table.header.indexOf(column);
  if (at < 0) throw new Error(`--cold ${column}: ${from} has no such column`);
  const kept = table.rows.filter((row) => keep(row[at]));
  await writeTable(to, { ...table, rows: kept }, delimiter);
  return kept.length;
}
