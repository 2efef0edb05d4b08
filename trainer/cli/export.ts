/**
 * npm run export -- --model DIR [--int8 [--int8-form integer|qdq] [--data F]] [--factorised]
 *   [--fusion-weights click=1,purchase=4] [--fusion sum|product]
 */
import { Command, Option } from "commander";
import type { FusionMode } from "../../shared/fusion.ts";
import type { DatasetSpec } from "../../shared/spec.ts";
import { exportModelDir, INT8_ONNX_FILE, ONNX_FILE } from "../export/export-model.ts";
import { DEFAULT_INT8_FORM, INT8_FORMS, type Int8Form, parseInt8Form } from "../export/quantize-form.ts";
import { specForModel } from "../predict/served-model.ts";
import { runCli, weightList } from "./run-cli.ts";

const program = new Command("export")
  .description("Write DIR/model.onnx and DIR/manifest.json from a trained model directory.")
  .requiredOption("--model <dir>", "model directory written by `npm run train`")
  .option("--int8", "also write DIR/model.int8.onnx (int8 weights; biases stay float32)")
  .option(
    "--int8-form <form>",
    `with --int8, how dense layers use their int8 kernels: ${INT8_FORMS.join(" or ")} (default ${DEFAULT_INT8_FORM}, the faster in onnxruntime-web)`,
  )
  .option(
    "--data <file>",
    "with --int8, labelled rows on which to measure each task's AUC drop (recorded in the manifest)",
  )
  .option("--spec <file>", "dataset spec for --data (default: the one saved with the model)")
  .option(
    "--fusion-weights <list>",
    "the worker's default head weights, e.g. click=1,purchase=4 (heads not named get 0); default: the weights of the directory's earlier export, else 1 per binary head and 0 for a regression head beside one, whose label units would swamp a sum",
    weightList,
  )
  .addOption(
    new Option(
      "--fusion <mode>",
      "the worker's default fusion: sum of w·p, or product of p^w (default: the earlier export's, else sum)",
    ).choices(["sum", "product"]),
  )
  .option(
    "--factorised",
    "also write DIR/model.factorised.onnx: user/context features run once per request (with --int8, also its int8 twin); needs a model trained with --cross-layout parallel or --cross 0",
  );

await runCli(async () => {
  const opts = program.parse().opts<{
    model: string;
    int8?: boolean;
    int8Form?: string;
    factorised?: boolean;
    data?: string;
    spec?: string;
    fusionWeights?: Record<string, number>;
    fusion?: FusionMode;
  }>();
  const int8Form: Int8Form | undefined =
    opts.int8Form === undefined ? undefined : parseInt8Form(opts.int8Form);
  if (int8Form && !opts.int8) throw new Error("--int8-form: only meaningful with --int8");
  if (opts.data && !opts.int8) throw new Error("--data: only meaningful with --int8");
  let int8Evaluation: { data: string; spec: DatasetSpec } | undefined;
  if (opts.data) {
    const spec = await specForModel(opts.model, opts.spec);
    if (!spec) throw new Error(`--spec: ${opts.model} has no spec.json; name the dataset spec with --spec`);
    int8Evaluation = { data: opts.data, spec };
  }
  const { manifest, warnings } = await exportModelDir(opts.model, {
    int8: opts.int8 ?? false,
    ...(int8Form ? { int8Form } : {}),
    factorised: opts.factorised ?? false,
    ...(int8Evaluation ? { int8Evaluation } : {}),
    fusion: {
      ...(opts.fusion ? { mode: opts.fusion } : {}),
      ...(opts.fusionWeights ? { weights: opts.fusionWeights } : {}),
    },
  });
  for (const warning of warnings) console.error(`warning: ${warning}`);
  const file = manifest.files[ONNX_FILE]!;
  const fusion = manifest.fusion.defaults;
  console.log(
    `exported ${opts.model}/${ONNX_FILE}: ${file.bytes} bytes, sha256 ${file.sha256.slice(0, 16)}…, id ${manifest.id}; ` +
      `default fusion ${fusion.mode} of ${Object.entries(fusion.weights)
        .map(([head, w]) => `${head} ${w}`)
        .join(", ")}`,
  );
  const int8 = manifest.files[INT8_ONNX_FILE];
  const q = manifest.quantization;
  if (int8 && q) {
    const diffs = Object.entries(q.maxAbsDiff).map(([head, d]) => `${head} ${d}`);
    console.log(
      `exported ${opts.model}/${INT8_ONNX_FILE} (${q.form} form): ${int8.bytes} bytes (${(q.bytesRatio * 100).toFixed(1)}% of float32), ` +
        `sha256 ${int8.sha256.slice(0, 16)}…, max |Δ| vs float32 over ${q.probeRows} probe rows: ${diffs.join(", ")}`,
    );
    if (q.aucDrop)
      console.log(
        Object.keys(q.aucDrop).length === 0
          ? `AUC drop float32 − int8: the model has no binary head to measure it on (${opts.data} was not used)`
          : `AUC drop float32 − int8 over ${q.aucRows} rows of ${opts.data}: ${Object.entries(q.aucDrop)
              .map(([head, d]) => `${head} ${d.toFixed(5)}`)
              .join(", ")}`,
      );
  }
  const f = manifest.factorised;
  if (f) {
    for (const file of [f.file, f.int8File].filter((x) => x !== undefined))
      console.log(
        `exported ${opts.model}/${file}: ${manifest.files[file]!.bytes} bytes; user inputs once per request ` +
          `(${f.user.dense.length} dense, ${f.user.ids.length} ids), item inputs per candidate (${f.item.dense.length} dense, ${f.item.ids.length} ids)`,
      );
  }
});
