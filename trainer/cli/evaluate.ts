/** npm run evaluate -- --model DIR --data F [--spec S] [--json] [--int8] */
import { Command } from "commander";
import { evaluateModel } from "../predict/evaluate-model.ts";
import { openServedModel, specForModel } from "../predict/served-model.ts";
import { metricsTable } from "./format.ts";
import { runCli } from "./run-cli.ts";

const program = new Command("evaluate")
  .description("Per-task metrics of the exported model, run by onnxruntime as the edge runs it.")
  .requiredOption("--model <dir>", "exported model directory")
  .requiredOption("--data <file>", "labelled CSV or JSONL (.gz accepted)")
  .option("--spec <file>", "dataset spec (default: the one saved with the model)")
  .option("--int8", "evaluate model.int8.onnx")
  .option("--json", "print the report as JSON")
  .showHelpAfterError();

await runCli(async () => {
  const opts = program
    .parse()
    .opts<{ model: string; data: string; spec?: string; int8?: boolean; json?: boolean }>();
  const model = await openServedModel(opts.model, opts.int8 ?? false);
  const spec = await specForModel(opts.model, opts.spec);
  if (!spec) throw new Error(`--spec: ${opts.model} has no spec.json; name the dataset spec with --spec`);
  const report = await evaluateModel(model, opts.data, spec);
  if (opts.json) {
    console.log(JSON.stringify(report, null, 2));
    return;
  }
  console.log(`evaluate: ${report.rows} rows, ${report.model.file} (${report.model.id})`);
  console.log(metricsTable(report.tasks));
  const r = report.ranking;
  if (r) {
    const oracle =
      r.oracleNdcg10 !== undefined
        ? `; against the true probabilities ${r.oracleNdcg10.toFixed(4)} (input order ${r.inputOracleNdcg10?.toFixed(4)})`
        : "";
    console.log(
      `ranking over ${r.groups} groups, NDCG@10 of the fused score: ${r.ndcg10.toFixed(4)} (input order ${r.inputNdcg10.toFixed(4)})${oracle}`,
    );
  }
});
