/**
 * npm run evaluate -- --model DIR --data F [--spec S] [--json] [--int8] [--importance] [--report]
 * [--against OLD]
 */
import { Command, InvalidArgumentError, Option } from "commander";
import { formatComparison, formatEvaluation } from "../evaluate/format-evaluation.ts";
import { compareModelDirs, evaluateModelDir, reportEvaluation } from "../workflows/evaluate-and-report.ts";
import { nonNegativeInt, positiveInt, runCli } from "./run-cli.ts";

const program = new Command("evaluate")
  .description("Per-task metrics of the exported model, run by onnxruntime as the edge runs it.")
  .requiredOption("--model <dir>", "exported model directory")
  .requiredOption("--data <file>", "labelled CSV or JSONL (.gz accepted)")
  .option("--spec <file>", "dataset spec (default: the one saved with the model)")
  .option("--int8", "evaluate model.int8.onnx")
  .option("--json", "print the report as JSON (undefined metrics are null)")
  .option("--threshold <p>", "probability cut for accuracy, precision, recall, F1", probability, 0.5)
  .option("--calibration-bins <n>", "bins of the calibration curve and ECE", positiveInt, 10)
  .addOption(
    new Option("--binning <kind>", "calibration bins of equal width or equal mass (rows)")
      .choices(["width", "mass"])
      .default("width"),
  )
  .option("--gauc-by <column>", "column grouping rows for GAUC, e.g. a user id (default: the spec's group)")
  .option("--importance", "permutation feature importance per task (one scoring pass per feature)")
  .option("--importance-repeats <n>", "shuffles per feature, averaged", positiveInt, 1)
  .option("--importance-rows <n>", "rows used for importance (seeded sample when more)", positiveInt, 20_000)
  .option("--importance-top <n>", "features listed in the text table", positiveInt, 20)
  .option("--seed <n>", "seed of the importance shuffles", nonNegativeInt, 7)
  .option("--report", "rewrite DIR/report.html with these numbers (calibration, correlation, importance)")
  .option(
    "--against <dir>",
    "also score this model directory on the same rows: each binary task's AUC difference with a 95% paired-bootstrap interval",
  );

interface EvaluateOptions {
  model: string;
  data: string;
  spec?: string;
  int8?: boolean;
  json?: boolean;
  threshold: number;
  calibrationBins: number;
  binning: "width" | "mass";
  gaucBy?: string;
  importance?: boolean;
  importanceRepeats: number;
  importanceRows: number;
  importanceTop: number;
  seed: number;
  report?: boolean;
  against?: string;
}

await runCli(async () => {
  const opts = program.parse().opts<EvaluateOptions>();
  const command = {
    model: opts.model,
    data: opts.data,
    ...(opts.spec !== undefined ? { spec: opts.spec } : {}),
  };
  const evaluation = {
    ...command,
    int8: opts.int8 ?? false,
    options: {
      threshold: opts.threshold,
      calibration: { bins: opts.calibrationBins, binning: opts.binning },
      ...(opts.gaucBy !== undefined ? { gaucBy: opts.gaucBy } : {}),
      ...(opts.importance
        ? { importance: { seed: opts.seed, repeats: opts.importanceRepeats, maxRows: opts.importanceRows } }
        : {}),
    },
  };
  const { report, comparison } =
    opts.against === undefined
      ? { report: await evaluateModelDir(evaluation), comparison: undefined }
      : await compareModelDirs({ ...evaluation, against: opts.against });
  if (opts.json)
    console.log(JSON.stringify(comparison ? { ...report, against: comparison } : report, null, 2));
  else {
    console.log(formatEvaluation(report, opts.importanceTop));
    if (comparison) console.log(formatComparison(comparison));
  }
  if (opts.report) {
    const path = await reportEvaluation(command, report);
    // stderr, so that --json output stays one JSON document
    process.stderr.write(`report: ${path}\n`);
  }
});

function probability(value: string): number {
  const n = Number(value);
  if (!(n >= 0 && n <= 1)) throw new InvalidArgumentError(`expected a probability in [0, 1], got "${value}"`);
  return n;
}
