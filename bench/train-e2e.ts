/**
 * The census-sized run of `npm run bench:train` (group "e2e"): what a user waits for, from a CSV
 * to an exported artifact, on a set shaped like UCI Census-Income (the MMoE paper's benchmark):
 * 80k training rows, 40 feature columns (8 numeric, 32 categorical; simulate/census.ts with 13
 * recodes), two binary tasks. The trainer runs as a user runs it, `mtrank train --arch mmoe` with
 * no other flag, in its own process (start-up, reading, encoding, training, calibration, report
 * and the float32 + int8 export all count); the tree anchor (tuned XGBoost, ./python-tools.ts) fits
 * the same files in the same run, and both score the same held-out file.
 */
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { readSpecFile } from "../trainer/data/read-spec.ts";
import { evaluateModel } from "../trainer/evaluate/evaluate-model.ts";
import { openServedModel } from "../trainer/predict/served-model.ts";
import { writeCensus } from "../trainer/simulate/census.ts";
import { tunedTrees } from "./python-tools.ts";

/** UCI Census-Income's width: 27 census columns and 13 recodes make 40 feature columns. */
const RECODES = 13;

export interface CensusSizedRun {
  trainRows: number;
  testRows: number;
  /** Wall seconds of `mtrank train` (a CSV to model.onnx and model.int8.onnx), process start included. */
  seconds: number;
  /** The trainer's own summary line: batch, epochs run, best epoch, workers. */
  summary: string;
  /** Test AUC per task of the exported model (float32 graph through onnxruntime). */
  auc: Record<string, number>;
  trees?: {
    version: string;
    /** The whole search: 4 settings per task, each with early stopping. */
    seconds: number;
    auc: Record<string, number>;
  };
  /** seconds / trees.seconds */
  ratio?: number;
}

export async function censusSizedRun(dir: string, quick: boolean): Promise<CensusSizedRun> {
  const trainRows = quick ? 8_000 : 80_000;
  const testRows = quick ? 4_000 : 40_000;
  const files = writeCensus(
    dir,
    { train: { rows: trainRows, seed: 1 }, test: { rows: testRows, seed: 2 } },
    7,
    RECODES,
  );
  const out = join(dir, "model");
  const started = performance.now();
  const run = spawnSync(
    process.execPath,
    ["bin/mtrank.js", "train", "--data", files.train!, "--spec", files.spec!, "--arch", "mmoe", "--out", out],
    { encoding: "utf8", maxBuffer: 64 * 2 ** 20 },
  );
  const seconds = (performance.now() - started) / 1000;
  if (run.status !== 0) throw new Error(`bench: mtrank train failed:\n${run.stderr}`);
  const summary = run.stdout.split("\n").find((l) => l.startsWith("trained ")) ?? "";
  const spec = await readSpecFile(files.spec!);
  const report = await evaluateModel(await openServedModel(out), files.test!, spec);
  const auc = Object.fromEntries(Object.entries(report.tasks).map(([t, m]) => [t, m.auc ?? Number.NaN]));
  const trees = tunedTrees({ train: files.train!, test: files.test!, spec: files.spec! }, "census-sized");
  return {
    trainRows,
    testRows,
    seconds,
    summary,
    auc,
    ...(trees
      ? {
          trees: { version: trees.version, seconds: trees.seconds, auc: trees.auc },
          ratio: seconds / trees.seconds,
        }
      : {}),
  };
}

/** The table lines of a census-sized run. */
export function censusSizedLines(r: CensusSizedRun): string[] {
  const tasks = Object.keys(r.auc);
  const fmt = (a: Record<string, number>) => tasks.map((t) => `${t} ${a[t]?.toFixed(4) ?? "-"}`).join(", ");
  return [
    `\ncensus-sized run: ${r.trainRows} training rows, 40 columns, CSV to exported artifact (default flags, --arch mmoe)`,
    `mtrank        ${r.seconds.toFixed(1).padStart(6)} s   test AUC ${fmt(r.auc)}`,
    ...(r.trees
      ? [
          `tuned trees   ${r.trees.seconds.toFixed(1).padStart(6)} s   test AUC ${fmt(r.trees.auc)}   (${r.trees.version}, 4-setting search)`,
          `ratio mtrank / trees: ${r.ratio!.toFixed(2)}x`,
        ]
      : []),
    `trainer: ${r.summary}`,
  ];
}
