/** npm run cv -- --data F --spec S --arch mmoe [--folds 5] [--early-stop M] [--patience N] [--json] */
import { Command, Option } from "commander";
import { ARCHITECTURES } from "../models/registry.ts";
import { BACKEND_CHOICES } from "../train/backend.ts";
import { MIN_PARALLEL_BATCH, PARALLEL_ROWS } from "../train/step-budget.ts";
import { DEFAULT_TRAIN_ARGS, pickTrainArgs } from "../train/train-args.ts";
import { CV_METRICS, crossValidate } from "../workflows/cross-validate.ts";
import { headlineMetrics } from "./format.ts";
import { positiveInt, positiveNumber, runCli, weightList } from "./run-cli.ts";
import { addStoppingFlags } from "./stopping-options.ts";

const program = new Command("cv")
  .description(
    "k-fold cross-validation: train k times, report each task metric as mean ± std over the folds.",
  )
  .requiredOption("--data <file>", "CSV or JSONL log (.gz accepted)")
  .requiredOption("--spec <file>", "dataset spec (JSON)")
  .option("--arch <name>", `architecture: ${Object.keys(ARCHITECTURES).join(", ")}`, "mmoe")
  .option("--folds <k>", "number of folds (rows, or groups when the spec has one)", positiveInt, 5)
  .option("--epochs <n>", "maximum epochs per fold", positiveInt)
  .option("--seed <n>", "random seed (also deals the folds)", positiveInt)
  .option("--task-weights <list>", "loss weights, e.g. click=1,purchase=2", weightList)
  .option("--batch-size <n>", "mini-batch size", positiveInt)
  .option("--learning-rate <x>", "peak learning rate", positiveNumber)
  .addOption(
    new Option("--backend <name>", "tfjs backend")
      .choices(BACKEND_CHOICES)
      .default(DEFAULT_TRAIN_ARGS.backend),
  )
  .option(
    "--workers <n>",
    `threads computing each batch's gradients (default 2 from ${PARALLEL_ROWS.toLocaleString("en-US")} training rows and batches of ${MIN_PARALLEL_BATCH} rows on 2+ cores, else 1)`,
    positiveInt,
  )
  .option("--json", "print the folds and the summary as JSON");
addStoppingFlags(program);

await runCli(async () => {
  const opts = program.parse().opts();
  const result = await crossValidate(
    // The flags are the training arguments of the same names.
    { data: opts.data, spec: opts.spec, ...pickTrainArgs(opts), arch: opts.arch },
    opts.folds,
    (index, s) => {
      if (opts.json) return;
      console.log(
        `fold ${index + 1}/${opts.folds}: ${s.trainRows} training, ${s.validRows} validation rows, best epoch ${s.bestEpoch}  ${headlineMetrics(s.validation)}`,
      );
    },
  );
  if (opts.json) {
    console.log(JSON.stringify(result, null, 2));
    return;
  }
  const columns = CV_METRICS.filter((m) => Object.values(result.summary).some((s) => s[m]));
  const rows = [["task", ...columns]];
  for (const [task, s] of Object.entries(result.summary))
    rows.push([
      task,
      ...columns.map((m) => (s[m] ? `${s[m].mean.toFixed(4)} ± ${s[m].std.toFixed(4)}` : "-")),
    ]);
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  console.log(`${opts.arch}, ${result.k}-fold cross-validation (mean ± std over folds)`);
  for (const r of rows) console.log(r.map((c, i) => c.padEnd(widths[i]!)).join("  "));
});
