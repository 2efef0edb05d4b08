/**
 * The checks every record of a log passes before it is used: the spec's columns are present,
 * numeric features parse, vectors have their dim numbers, every task has a label (or, for a task
 * whose spec says `missingLabel: "mask"`, NaN in its place). A failure is a DataError naming the
 * file, line and column.
 */
import {
  categoryOf,
  decimalOf,
  FLOAT32_MAX,
  numberOf,
  roundedIdProblem,
  shownValue,
  type ValueRules,
  VectorValueError,
  vectorOf,
} from "../../shared/encoder/values.ts";
import { type DatasetSpec, defaultSeparator, type TaskSpec } from "../../shared/spec.ts";
import { DataError, type SourceRecord } from "./read-rows.ts";

export interface RecordChecker {
  /** Checks one record; returns its label per task, in spec.tasks order (NaN: missing, masked). */
  check(source: SourceRecord): number[];
}

export interface RecordCheckOptions {
  /** Whether records carry the tasks' labels (default true); `predict` reads features only. */
  labels?: boolean;
}

export function recordChecker(
  file: string,
  spec: DatasetSpec,
  options: RecordCheckOptions = {},
): RecordChecker {
  const withLabels = options.labels ?? true;
  const rules: ValueRules = { trim: spec.trim, missing: new Set(spec.missing) };
  const numeric = spec.features.filter((f) => f.type === "numeric").map((f) => f.name);
  const vectors = spec.features.flatMap((f) =>
    f.type === "vector"
      ? [{ name: f.name, dim: f.dim, separator: f.separator ?? defaultSeparator("vector") }]
      : [],
  );
  const categorical = spec.features.filter((f) => f.type === "categorical").map((f) => f.name);
  const bags = spec.features.filter((f) => f.type === "multi_categorical").map((f) => f.name);
  let checkedColumns = false;
  return {
    check({ record, line, problem }) {
      if (problem) throw new DataError(`${file}:${line}: ${problem}`);
      if (!checkedColumns) {
        checkColumns(file, spec, record, withLabels);
        checkedColumns = true;
      }
      // A ranked list's rows share its id; a row without one belongs to no list, and read as ""
      // every such row would join one list of them all (its split side, its ranking loss, its NDCG).
      // Scoring (no labels) reads no list.
      const group = withLabels ? spec.group : undefined;
      if (group !== undefined) {
        const id = record[group];
        if (categoryOf(id, rules) === null)
          throw new DataError(
            `${file}:${line}: column "${group}": no group id (spec.group): a row of a ranked list needs its list's id`,
          );
        const rounded = roundedIdProblem(id);
        if (rounded) throw new DataError(`${file}:${line}: column "${group}": ${rounded}`);
      }
      for (const name of numeric) {
        if (Number.isNaN(numberOf(record[name], rules))) {
          throw new DataError(
            `${file}:${line}: column "${name}": ${shownValue(record[name])} is not a number`,
          );
        }
      }
      // A JSON object or array where one category belongs would otherwise read as missing.
      for (const name of categorical) {
        const value = record[name];
        if (!isCategory(value))
          throw new DataError(`${file}:${line}: column "${name}": ${JSON.stringify(value)} ${NOT_CATEGORY}`);
        const rounded = roundedIdProblem(value);
        if (rounded) throw new DataError(`${file}:${line}: column "${name}": ${rounded}`);
      }
      for (const name of bags) {
        const value = record[name];
        if (Array.isArray(value)) {
          value.forEach((part, i) => {
            if (!isCategory(part))
              throw new DataError(
                `${file}:${line}: column "${name}": element ${i}: ${JSON.stringify(part)} ${NOT_CATEGORY}`,
              );
            const rounded = roundedIdProblem(part);
            if (rounded) throw new DataError(`${file}:${line}: column "${name}": element ${i}: ${rounded}`);
          });
        } else if (!isCategory(value))
          throw new DataError(
            `${file}:${line}: column "${name}": ${JSON.stringify(value)} ${NOT_CATEGORY} or an array of them`,
          );
      }
      for (const v of vectors) {
        try {
          vectorOf(record[v.name], v.dim, v.separator, rules);
        } catch (error) {
          if (!(error instanceof VectorValueError)) throw error;
          throw new DataError(`${file}:${line}: column "${v.name}": ${error.message}`);
        }
      }
      if (!withLabels) return [];
      const labels = spec.tasks.map((task) => labelOf(task, record[task.column], rules, file, line));
      return labels.map((y, t) => (Number.isNaN(y) ? missingLabel(spec, labels, t, file, line) : y));
    },
  };
}

const NOT_CATEGORY = "is not a category (a string, number or boolean)";

/** A value that reads as one category or as missing: not a JSON object or array. */
function isCategory(value: unknown): boolean {
  return value === null || typeof value !== "object";
}

/**
 * The label of a row that has none for task t: 0 for a task conditional on one the row did not
 * do (no purchase without a click: logs often leave it empty), NaN for a masked task, else an error.
 */
function missingLabel(
  spec: DatasetSpec,
  labels: readonly number[],
  t: number,
  file: string,
  line: number,
): number {
  const task = spec.tasks[t]!;
  if (task.type === "binary" && task.given !== undefined) {
    if (labels[spec.tasks.findIndex((other) => other.name === task.given)] === 0) return 0;
  }
  if (task.missingLabel === "mask") return Number.NaN;
  throw new DataError(
    `${file}:${line}: column "${task.column}": missing label for task "${task.name}" ` +
      `(tasks.${task.name}.missingLabel "mask" trains the other tasks on such rows)`,
  );
}

/** Missing columns are a problem of the whole file, not of a row: always fatal. */
export class ColumnError extends DataError {}

/**
 * A CSV's columns, from its first record: a column the spec reads and the header lacks is an error
 * of the whole file. A JSONL record leaves out what it does not have (purchase on rows without a
 * click, dwell not yet known), so the first record says nothing about the others: its keys are
 * not checked, and each row's values are (a missing label, a missing group id).
 */
function checkColumns(
  file: string,
  spec: DatasetSpec,
  record: Record<string, unknown>,
  labels: boolean,
): void {
  if (spec.format === "jsonl") return;
  const present = new Set(Object.keys(record));
  const missing = (name: string, field: string) => {
    if (present.has(name)) return;
    const near = [...present].find((key) => sameName(key, name));
    const hint = near === undefined ? "" : ` (the header has ${JSON.stringify(near)})`;
    throw new ColumnError(`${file}: ${field}: no column "${name}"${hint}`);
  };
  if (labels) for (const task of spec.tasks) missing(task.column, `tasks.${task.name}.column`);
  for (const f of spec.features) missing(f.name, `features.${f.name}`);
  if (labels && spec.group) missing(spec.group, "group");
}

/** Names that differ only in case, surrounding space or Unicode normalisation (é as one or two code points). */
function sameName(a: string, b: string): boolean {
  const plain = (s: string) => s.trim().normalize("NFC").toLowerCase();
  return plain(a) === plain(b);
}

const BINARY_WORDS: Readonly<Record<string, number>> = {
  true: 1,
  t: 1,
  yes: 1,
  y: 1,
  false: 0,
  f: 0,
  no: 0,
  n: 0,
};

/**
 * A binary label when the spec names no positive values: 1 and 0 in any decimal spelling ("1.0"
 * from a float column), -1 as 0 (the ±1 convention), and true/false or yes/no in any case. Any
 * other value is null ("0x1" too, as in a numeric column): reading it as 0 would train on a
 * silently wrong label.
 */
export function binaryLabel(text: string): 0 | 1 | null {
  // Own words only: "constructor" or "__proto__" would find Object.prototype's and read as 0.
  const lower = text.toLowerCase();
  if (Object.hasOwn(BINARY_WORDS, lower)) return BINARY_WORDS[lower] === 1 ? 1 : 0;
  const x = decimalOf(text);
  return x === 1 ? 1 : x === 0 || x === -1 ? 0 : null;
}

/** A task's label from its column: 0/1, the (transformed) number, or NaN when the value is missing. */
function labelOf(task: TaskSpec, value: unknown, rules: ValueRules, file: string, line: number): number {
  if (task.type === "binary") {
    // An array or object has no label to read: String([1]) would make one up.
    if (value !== null && typeof value === "object") throw notBinary(task, value, file, line);
    const text = typeof value === "string" ? (rules.trim ? value.trim() : value) : String(value);
    if (value === undefined || value === null || rules.missing.has(text)) return Number.NaN;
    if (task.positive) return task.positive.includes(text) ? 1 : 0;
    const y = binaryLabel(text);
    if (y === null) throw notBinary(task, value, file, line);
    return y;
  }
  const x = numberOf(value, rules);
  if (x === null) return Number.NaN;
  if (Number.isNaN(x)) {
    throw new DataError(`${file}:${line}: column "${task.column}": ${shownValue(value)} is not a number`);
  }
  if (task.transform === "log1p") {
    if (x <= -1)
      throw new DataError(`${file}:${line}: column "${task.column}": ${x} is out of range for log1p`);
    return Math.log1p(x);
  }
  // Labels are float32 in training: a larger one would read as Infinity and make the loss NaN.
  if (Math.abs(x) > FLOAT32_MAX) {
    throw new DataError(
      `${file}:${line}: column "${task.column}": ${x} is too large for a regression label ` +
        `(at most ${FLOAT32_MAX.toPrecision(3)} in magnitude); rescale it or use "transform": "log1p"`,
    );
  }
  return x;
}

function notBinary(task: TaskSpec, value: unknown, file: string, line: number): DataError {
  return new DataError(
    `${file}:${line}: column "${task.column}": ${shownValue(value)} is not a binary label ` +
      `(1/0, true/false, yes/no); list the positive values in tasks.${task.name}.positive`,
  );
}
