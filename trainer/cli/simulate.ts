/**
 * npm run simulate -- --out DIR [--seed N] [--users N] [--items N] [--requests N] [--list-size N]
 * Writes DIR/data.csv and DIR/spec.json: a simulated recommendation log with ground truth.
 */
import { Command, InvalidArgumentError } from "commander";
import { DEFAULT_SIMULATE_OPTIONS, type SimulateOptions, writeSimulation } from "../simulate/simulator.ts";
import { finiteNumber } from "./run-cli.ts";

function integer(min: number): (value: string) => number {
  return (value: string) => {
    const trimmed = value.trim();
    const n = Number(trimmed);
    if (!/^-?\d+$/.test(trimmed) || !Number.isSafeInteger(n)) {
      throw new InvalidArgumentError(`expected an integer, got "${value}".`);
    }
    if (n < min) throw new InvalidArgumentError(`expected an integer >= ${min}, got ${n}.`);
    return n;
  };
}

const pct = (x: number): string => (Number.isFinite(x) ? `${(100 * x).toFixed(2)}%` : "n/a");

const program = new Command()
  .name("simulate")
  .description(
    "Simulate a seeded recommendation log (clicks, purchases, dwell) with ground-truth probabilities.",
  )
  .option("--out <dir>", "output directory (data.csv + spec.json)", "out/sim")
  .option("--seed <n>", "random seed", integer(0), DEFAULT_SIMULATE_OPTIONS.seed)
  .option("--users <n>", "number of users", integer(1), DEFAULT_SIMULATE_OPTIONS.users)
  .option("--items <n>", "number of items", integer(1), DEFAULT_SIMULATE_OPTIONS.items)
  .option(
    "--requests <n>",
    "number of requests (ranked lists)",
    integer(1),
    DEFAULT_SIMULATE_OPTIONS.requests,
  )
  .option("--list-size <n>", "items shown per request", integer(1), DEFAULT_SIMULATE_OPTIONS.listSize)
  .option(
    "--latent-dim <n>",
    "latent dimension of users and items",
    integer(1),
    DEFAULT_SIMULATE_OPTIONS.latentDim,
  )
  .option(
    "--purchase-bias <logit>",
    "logit of a purchase after a click (-2.1: ~20% of clicks buy; -3.6: ~6%, as sparse as shop logs)",
    finiteNumber,
    DEFAULT_SIMULATE_OPTIONS.purchaseBias,
  )
  .action((opts: SimulateOptions & { out: string }) => {
    try {
      const { out, ...options } = opts;
      const result = writeSimulation(out, options);
      const s = result.stats;
      console.log(
        `simulate: wrote ${result.rowCount} rows (${s.requests} requests); click rate ${pct(s.clickRate)}, ` +
          `purchase rate ${pct(s.purchaseRate)}, purchase|click ${pct(s.purchaseGivenClickRate)}; ` +
          `${result.dataPath}, ${result.specPath}`,
      );
    } catch (err) {
      console.error(`simulate: error: ${err instanceof Error ? err.message : String(err)}`);
      process.exitCode = 1;
    }
  });

program.parse();
