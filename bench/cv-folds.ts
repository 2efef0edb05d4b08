/**
 * bench:quality --cv K: one test file of a few thousand rows moves a difference between two
 * models by ±0.01 to ±0.025 AUC, more than the differences it is asked to settle (NMES1988's
 * 1,322 test rows, Lending Club's 146 bad loans). Cross-validation tests every row once: the
 * training and test files are joined, dealt into K folds, and each fold is scored by models
 * trained on the other K − 1; two models' difference is then paired by fold, its spread over the
 * folds giving a standard error that counts every row.
 */
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import Papa from "papaparse";
import type { DatasetSpec } from "../shared/spec.ts";
import { mulberry32, shuffled } from "../trainer/core/rng.ts";
import type { SuiteFiles } from "./suites.ts";

/** The deal's seed: the folds stay the same from run to run, whatever the training seeds. */
const FOLD_SEED = 1;

/** K fold suites over `files` joined, in `dir`/fold-<i>: fold i tests, the others train. */
export async function cvFolds(
  files: SuiteFiles,
  k: number,
  spec: Pick<DatasetSpec, "format" | "delimiter">,
  dir: string,
): Promise<SuiteFiles[]> {
  const format = spec.format;
  const train = await records(files.train, format, spec.delimiter);
  const test = await records(files.test, format, spec.delimiter);
  if (train.header.join("\u0000") !== test.header.join("\u0000"))
    throw new Error(`--cv: ${files.train} and ${files.test} have different columns`);
  const rows = [...train.rows, ...test.rows];
  if (!Number.isInteger(k) || k < 2 || k > rows.length)
    throw new Error(`--cv: expected a number of folds from 2 to ${rows.length}, got ${k}`);
  const order = shuffled(rows.length, mulberry32(FOLD_SEED));
  const foldOf = new Int32Array(rows.length);
  order.forEach((row, i) => {
    foldOf[row] = i % k;
  });
  const folds: SuiteFiles[] = [];
  for (let f = 0; f < k; f++) {
    const at = join(dir, `fold-${f + 1}`);
    await mkdir(at, { recursive: true });
    const fold = { train: join(at, `train.${format}`), test: join(at, `test.${format}`), spec: files.spec };
    const write = (path: string, keep: (row: number) => boolean) =>
      writeFile(
        path,
        serialise(
          train.header,
          rows.filter((_, i) => keep(i)),
          format,
          spec.delimiter,
        ),
      );
    await write(fold.train, (i) => foldOf[i] !== f);
    await write(fold.test, (i) => foldOf[i] === f);
    folds.push(fold);
  }
  return folds;
}

type Record_ = string[] | string;

async function records(
  path: string,
  format: "csv" | "jsonl",
  delimiter: string,
): Promise<{ header: string[]; rows: Record_[] }> {
  const text = await readFile(path, "utf8");
  if (format === "jsonl") return { header: [], rows: text.split("\n").filter((line) => line.trim() !== "") };
  const [header, ...rows] = Papa.parse<string[]>(text, { skipEmptyLines: true, delimiter }).data;
  if (!header) throw new Error(`--cv: ${path} is empty`);
  return { header, rows };
}

function serialise(header: string[], rows: Record_[], format: "csv" | "jsonl", delimiter: string): string {
  if (format === "jsonl") return `${(rows as string[]).join("\n")}\n`;
  return `${Papa.unparse([header, ...(rows as string[][])], { delimiter })}\n`;
}

/** Mean and standard error of the mean (NaN with fewer than two values). */
export function meanAndError(values: readonly number[]): { mean: number; error: number } {
  const n = values.length;
  const mean = values.reduce((a, v) => a + v, 0) / n;
  const variance = values.reduce((a, v) => a + (v - mean) ** 2, 0) / (n - 1);
  return { mean, error: Math.sqrt(variance / n) };
}
