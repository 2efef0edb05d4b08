/**
 * Loads a log into memory as feature records plus label arrays, checking every value the spec
 * declares: a bad value stops the load with file, line and column named.
 */
import type { FeatureValues } from "../../shared/encoder/encode.ts";
import { decimalOf } from "../../shared/encoder/values.ts";
import type { DatasetSpec } from "../../shared/spec.ts";
import { recordChecker } from "./check-record.ts";
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
  const checker = recordChecker(file, spec);
  const rows: FeatureValues[] = [];
  const labels: number[][] = spec.tasks.map(() => []);
  const truth: Record<string, number[]> = Object.fromEntries(
    Object.keys(spec.truth ?? {}).map((t) => [t, []]),
  );
  const groups: string[] | null = spec.group ? [] : null;
  for await (const source of readRecords(file, spec)) {
    const { record } = source;
    checker.check(source).forEach((y, t) => {
      labels[t]!.push(y);
    });
    for (const [task, column] of Object.entries(spec.truth ?? {})) truth[task]!.push(truthOf(record[column]));
    if (groups && spec.group) groups.push(String(record[spec.group] ?? ""));
    rows.push(record);
  }
  if (rows.length === 0) throw new DataError(`${file}: no data rows`);
  return {
    rows,
    labels: Object.fromEntries(spec.tasks.map((t, i) => [t.name, Float32Array.from(labels[i]!)])),
    groups,
    truth: Object.fromEntries(Object.entries(truth).map(([k, v]) => [k, Float32Array.from(v)])),
  };
}

/** A truth column's probability: a JSON number as it is, text only as a decimal (else NaN). */
function truthOf(value: unknown): number {
  return typeof value === "number" ? value : decimalOf(String(value ?? "").trim());
}
