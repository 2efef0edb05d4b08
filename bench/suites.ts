/** Data sets the quality benchmarks share: files on disk a training run and a test can read. */
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { writeCensus } from "../trainer/simulate/census.ts";
import { writeSimulation } from "../trainer/simulate/simulator.ts";
import { writeThresholdWorld } from "../trainer/simulate/threshold-world.ts";

export interface SuiteFiles {
  train: string;
  test: string;
  spec: string;
}

/**
 * The recommendation simulator's log split by request: the first `trainFraction` (default 80%)
 * train, the rest test.
 */
export async function simulatorSuite(
  dir: string,
  requests: number,
  options: { purchaseBias?: number; trainFraction?: number } = {},
): Promise<SuiteFiles> {
  const { trainFraction = 0.8, ...world } = options;
  const sim = writeSimulation(dir, { requests, ...world, dwellTask: false });
  const lines = (await readFile(sim.dataPath, "utf8")).trimEnd().split("\n");
  const body = lines.slice(1);
  const cut = Math.round(requests * trainFraction) * (body.length / requests);
  const train = join(dir, "train.csv");
  const test = join(dir, "test.csv");
  await writeFile(train, `${[lines[0], ...body.slice(0, cut)].join("\n")}\n`);
  await writeFile(test, `${[lines[0], ...body.slice(cut)].join("\n")}\n`);
  return { train, test, spec: sim.specPath };
}

/** The census-like tabular set (simulate/census.ts): train and test from one world. */
export function censusSuite(dir: string, trainRows: number, testRows: number): SuiteFiles {
  const written = writeCensus(dir, {
    train: { rows: trainRows, seed: 1 },
    test: { rows: testRows, seed: 2 },
  });
  return { train: written.train!, test: written.test!, spec: written.spec! };
}

/** The threshold world (simulate/threshold-world.ts), where trees beat a linear model by far. */
export function thresholdSuite(dir: string, trainRows: number, testRows: number): SuiteFiles {
  const written = writeThresholdWorld(dir, {
    train: { rows: trainRows, seed: 1 },
    test: { rows: testRows, seed: 2 },
  });
  return { train: written.train!, test: written.test!, spec: written.spec! };
}

export function fmtAucs(aucs: Record<string, number>): string {
  return Object.entries(aucs)
    .map(([t, a]) => `${t} ${a.toFixed(4)}`)
    .join(", ");
}

/** AUCs of binary tasks and, for regression tasks, their MSE ("visits mse 0.7389"). */
export function fmtScores(aucs: Record<string, number>, mse: Record<string, number> = {}): string {
  const binary = Object.fromEntries(Object.entries(aucs).filter(([t, a]) => !(t in mse) && !Number.isNaN(a)));
  const regression = Object.entries(mse).map(([t, e]) => `${t} mse ${e.toFixed(4)}`);
  return [fmtAucs(binary), ...regression].filter((s) => s).join(", ");
}
