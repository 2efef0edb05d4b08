/**
 * Loads a log into memory as feature records plus label arrays, checking every value the spec
 * declares: a bad value stops the load with file, line and column named.
 */
import type { FeatureValues } from "../../shared/encoder/encode.ts";
import { numberOf, type ValueRules } from "../../shared/encoder/values.ts";
import type { DatasetSpec, TaskSpec } from "../../shared/spec.ts";
import { DataError, readRecords } from "./read-rows.ts";

export interface Dataset {
  rows: FeatureValues[];
  /** One label array per task: 0/1 for binary tasks, transformed value for regression tasks. */
  labels: Record<string, Float32Array>;
  /** Group key per row (spec.group), used to keep a ranked list on one side of a split. */
  groups: string[] | null;
  /** Oracle probabilities per task (simulated data with spec.truth). */
  truth: Record<string, Float32Array>;
}

export async function loadDataset(file: string, spec: DatasetSpec): Promise<Dataset> {
  const rules: ValueRules = { trim: spec.trim, missing: new Set(spec.missing) };
  const rows: FeatureValues[] = [];
  const labels: Record<string, number[]> = Object.fromEntries(spec.tasks.map((t) => [t.name, []]));
  const truth: Record<string, number[]> = Object.fromEntries(
    Object.keys(spec.truth ?? {}).map((t) => [t, []]),
  );
  const groups: string[] | null = spec.group ? [] : null;
  const numeric = spec.features.filter((f) => f.type === "numeric").map((f) => f.name);
  let checkedColumns = false;

  for await (const { record, line } of readRecords(file, spec)) {
    if (!checkedColumns) {
      checkColumns(file, spec, record);
      checkedColumns = true;
    }
    for (const name of numeric) {
      if (Number.isNaN(numberOf(record[name], rules))) {
        throw new DataError(
          `${file}:${line}: column "${name}": ${JSON.stringify(record[name])} is not a number`,
        );
      }
    }
    for (const task of spec.tasks)
      labels[task.name]!.push(labelOf(task, record[task.column], rules, file, line));
    for (const [task, column] of Object.entries(spec.truth ?? {})) truth[task]!.push(Number(record[column]));
    if (groups && spec.group) groups.push(String(record[spec.group] ?? ""));
    rows.push(record);
  }
  if (rows.length === 0) throw new DataError(`${file}: no data rows`);
  return {
    rows,
    labels: Object.fromEntries(Object.entries(labels).map(([k, v]) => [k, Float32Array.from(v)])),
    groups,
    truth: Object.fromEntries(Object.entries(truth).map(([k, v]) => [k, Float32Array.from(v)])),
  };
}

function checkColumns(file: string, spec: DatasetSpec, record: Record<string, unknown>): void {
  const present = new Set(Object.keys(record));
  for (const task of spec.tasks) {
    if (!present.has(task.column))
      throw new DataError(`${file}: tasks.${task.name}.column: no column "${task.column}"`);
  }
  if (spec.format === "csv") {
    for (const f of spec.features) {
      if (!present.has(f.name)) throw new DataError(`${file}: features.${f.name}: no column "${f.name}"`);
    }
  }
  if (spec.group && !present.has(spec.group))
    throw new DataError(`${file}: group: no column "${spec.group}"`);
}

function labelOf(task: TaskSpec, value: unknown, rules: ValueRules, file: string, line: number): number {
  if (task.type === "binary") {
    const text = typeof value === "string" ? (rules.trim ? value.trim() : value) : String(value);
    if (value === undefined || value === null || rules.missing.has(text)) {
      throw new DataError(`${file}:${line}: column "${task.column}": missing label for task "${task.name}"`);
    }
    return (task.positive ?? ["1", "true"]).includes(text) ? 1 : 0;
  }
  const x = numberOf(value, rules);
  if (x === null || Number.isNaN(x)) {
    throw new DataError(`${file}:${line}: column "${task.column}": ${JSON.stringify(value)} is not a number`);
  }
  if (task.transform === "log1p") {
    if (x <= -1)
      throw new DataError(`${file}:${line}: column "${task.column}": ${x} is out of range for log1p`);
    return Math.log1p(x);
  }
  return x;
}
