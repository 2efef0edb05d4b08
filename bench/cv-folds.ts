/**
 * bench:quality --cv K: one test file of a few thousand rows moves a difference between two
 * models by ±0.01 to ±0.025 AUC, more than the differences it is asked to settle (NMES1988's
 * 1,322 test rows, Lending Club's 146 bad loans). Cross-validation tests every row once: the
 * training and test files are joined, dealt into K folds, and each fold is scored by models
 * trained on the other K − 1; two models' difference is then paired by fold, its spread over the
 * folds giving a standard error that counts every row.
 *
 * `--rounds R` deals the rows R times (another deal each round) and pairs over all R·K folds.
 * Their training sets overlap, so the differences are correlated and the plain standard error of
 * their mean is too small; the error here is Nadeau and Bengio's corrected one (Machine Learning
 * 52, 2003), √((1/J + n_test/n_train) · s²) over J fold differences with sample variance s²,
 * the correction Bouckaert and Frank (PAKDD 2004) found to keep a repeated cross-validation's
 * test at its nominal level.
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import type { DatasetSpec } from "../shared/spec.ts";
import { mulberry32, shuffled } from "../trainer/core/rng.ts";
import type { SuiteFiles } from "./suites.ts";
import { keepRows, readTable, type TableRows, writeTable } from "./table-file.ts";

/**
 * The first round's deal seed (round r deals with FOLD_SEED + r): the folds stay the same from run
 * to run, whatever the training seeds.
 */
const FOLD_SEED = 1;

/**
 * K fold suites over `files` joined, in `dir`/fold-<i>: fold i tests, the others train. `round`
 * (from 0) picks the deal: each round's folds test every row once, each in another fold.
 */
export async function cvFolds(
  files: SuiteFiles,
  k: number,
  spec: Pick<DatasetSpec, "format" | "delimiter">,
  dir: string,
  round = 0,
): Promise<SuiteFiles[]> {
  const format = spec.format;
  const train = await readTable(files.train, format, spec.delimiter);
  const test = await readTable(files.test, format, spec.delimiter);
  const all = joined(train, test, files);
  const n = all.rows.length;
  if (!Number.isInteger(k) || k < 2 || k > n)
    throw new Error(`--cv: expected a number of folds from 2 to ${n}, got ${k}`);
  const order = shuffled(n, mulberry32(FOLD_SEED + round));
  const foldOf = new Int32Array(n);
  order.forEach((row, i) => {
    foldOf[row] = i % k;
  });
  const folds: SuiteFiles[] = [];
  for (let f = 0; f < k; f++) {
    const at = join(dir, `fold-${f + 1}`);
    await mkdir(at, { recursive: true });
    const fold = { train: join(at, `train.${format}`), test: join(at, `test.${format}`), spec: files.spec };
    await writeTable(
      fold.train,
      keepRows(all, (i) => foldOf[i] !== f),
      spec.delimiter,
    );
    await writeTable(
      fold.test,
      keepRows(all, (i) => foldOf[i] === f),
      spec.delimiter,
    );
    folds.push(fold);
  }
  return folds;
}

/** The training file's rows, then the test file's, under one header. */
function joined(train: TableRows, test: TableRows, files: SuiteFiles): TableRows {
  if (train.format === "jsonl" || test.format === "jsonl")
    return { format: "jsonl", rows: [...(train.rows as string[]), ...(test.rows as string[])] };
  for (const [path, table] of [
    [files.train, train],
    [files.test, test],
  ] as const)
    if (table.header.length === 0) throw new Error(`--cv: ${path} is empty`);
  if (train.header.join("\u0000") !== test.header.join("\u0000"))
    throw new Error(`--cv: ${files.train} and ${files.test} have different columns`);
  return { ...train, rows: [...train.rows, ...test.rows] };
}

/**
 * Mean and standard error of the mean (NaN with fewer than two values). With `testShare` (a
 * fold's test rows over its training rows: 1 / (K − 1)), the error is Nadeau and Bengio's
 * corrected one for fold differences whose training sets overlap: √((1/J + testShare) · s²).
 */
export function meanAndError(values: readonly number[], testShare = 0): { mean: number; error: number } {
  const n = values.length;
  const mean = values.reduce((a, v) => a + v, 0) / n;
  const variance = values.reduce((a, v) => a + (v - mean) ** 2, 0) / (n - 1);
  return { mean, error: Math.sqrt((1 / n + testShare) * variance) };
}
