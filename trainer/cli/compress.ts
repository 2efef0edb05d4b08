/**
 * npm run compress -- --model DIR --prune 0.8 --data F --out DIR2 [--epochs 2]
 * npm run compress -- --distill-from TEACHER --arch shared-bottom --bottom 64,32 --data F --out DIR2
 *
 * A verb of its own rather than flags on `train`: both start from a trained model directory
 * (the one to prune, or the teacher), which `train` never reads. The result is a model directory
 * like any other, exported (float32 and int8) unless --no-export.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { Command, InvalidArgumentError, Option } from "commander";
import type { FineTuneLog } from "../compress/fine-tune.ts";
import { runDistill } from "../compress/run-distill.ts";
import { runPrune } from "../compress/run-prune.ts";
import { exportModelDir, INT8_ONNX_FILE, ONNX_FILE } from "../export/export-model.ts";
import { ARCHITECTURES } from "../models/registry.ts";
import { BACKEND_CHOICES, selectBackend } from "../train/backend.ts";
import { addArchFlags, archOptions } from "./arch-options.ts";
import { metricsTable } from "./format.ts";
import { fraction, positiveInt, positiveNumber, runCli } from "./run-cli.ts";

function sparsity(value: string): number {
  const n = Number(value);
  if (!(n > 0 && n < 1)) throw new InvalidArgumentError(`expected a fraction in (0, 1), got "${value}"`);
  return n;
}

function unit(value: string): number {
  const n = Number(value);
  if (!(n >= 0 && n <= 1)) throw new InvalidArgumentError(`expected a number in [0, 1], got "${value}"`);
  return n;
}

const program = new Command("compress")
  .description(
    "Prune a trained model (--model, --prune) or distil a teacher into a student (--distill-from).",
  )
  .requiredOption("--data <file>", "training data (the file the model was trained on, or one like it)")
  .requiredOption("--out <dir>", "model directory to write")
  .option("--model <dir>", "model to prune")
  .option("--prune <x>", "fraction of each dense kernel to zero, e.g. 0.8", sparsity)
  .option("--prune-embedding", "also prune the embedding table (trained densely while fine-tuning)")
  .option("--distill-from <dir>", "teacher model to distil")
  .option("--arch <name>", `student architecture: ${Object.keys(ARCHITECTURES).join(", ")}`)
  .option("--alpha <x>", "weight of the true labels in the student's targets (rest: teacher)", unit, 0.5)
  .option(
    "--epochs <n>",
    "epochs (prune: fine-tuning, default 2; distil: maximum, default as train: scaled to the file)",
    positiveInt,
  )
  .option("--spec <file>", "dataset spec (default: the model directory's spec.json)")
  .option("--seed <n>", "random seed (default: the model's)", positiveInt)
  .option("--valid-fraction <x>", "fraction of rows (or groups) held out for validation", fraction, 0.1)
  .option(
    "--learning-rate <x>",
    "learning rate (default 0.002; distil: the peak of the trainer's schedule)",
    positiveNumber,
  )
  .option("--batch-size <n>", "mini-batch size", positiveInt)
  .addOption(new Option("--backend <name>", "tfjs backend").choices(BACKEND_CHOICES).default("auto"))
  .option("--no-export", "only write the trained model; run `npm run export` later");
addArchFlags(program, "student: ");

await runCli(async () => {
  const opts = program.parse().opts();
  const backend = await selectBackend(opts.backend);
  const onEpoch = (log: FineTuneLog) => {
    const aucs = Object.entries(log.validation)
      .map(([task, m]) => `${task} auc ${m.auc?.toFixed(4) ?? "-"}`)
      .join("  ");
    console.log(
      `epoch ${log.epoch}  loss ${log.trainLoss.toFixed(4)}  ${aucs}  (${log.seconds.toFixed(1)} s)`,
    );
  };
  const common = {
    data: opts.data as string,
    out: opts.out as string,
    backend,
    onEpoch,
    ...(opts.epochs !== undefined ? { epochs: opts.epochs as number } : {}),
    ...(opts.spec !== undefined ? { spec: opts.spec as string } : {}),
    ...(opts.seed !== undefined ? { seed: opts.seed as number } : {}),
    validFraction: opts.validFraction as number,
    ...(opts.learningRate !== undefined ? { learningRate: opts.learningRate as number } : {}),
    ...(opts.batchSize !== undefined ? { batchSize: opts.batchSize as number } : {}),
  };
  if (opts.distillFrom !== undefined && opts.prune !== undefined)
    throw new Error("--prune and --distill-from: pick one (prune the student afterwards if you want both)");
  if (opts.prune !== undefined) {
    if (opts.model === undefined) throw new Error("--model: --prune needs the model to prune");
    const s = await runPrune({
      ...common,
      model: opts.model,
      sparsity: opts.prune,
      embedding: opts.pruneEmbedding,
    });
    console.log(
      `pruned ${opts.model} to ${(s.sparsity * 100).toFixed(1)}% zeros in its kernels; validation (${s.rows.valid} rows) before pruning:`,
    );
    console.log(metricsTable(s.before));
    console.log("right after pruning:");
    console.log(metricsTable(s.pruned));
    console.log(`after fine-tuning (best epoch ${s.bestEpoch}):`);
    console.log(metricsTable(s.after));
    if (s.sourceInSample) console.log(inSampleNote(opts.model));
  } else if (opts.distillFrom !== undefined) {
    if (opts.arch === undefined) throw new Error("--arch: --distill-from needs the student's architecture");
    const options = archOptions(opts);
    const s = await runDistill({
      ...common,
      teacher: opts.distillFrom,
      arch: opts.arch,
      options,
      alpha: opts.alpha,
    });
    console.log(
      `distilled ${opts.distillFrom} (${s.parameters.teacher} parameters) into ${opts.arch} (${s.parameters.student}), batch ${s.batchSize}, best epoch ${s.bestEpoch} of up to ${s.epochs}; validation (${s.rows.valid} rows), teacher:`,
    );
    console.log(metricsTable(s.teacher));
    console.log("student:");
    console.log(metricsTable(s.student));
    if (s.sourceInSample) console.log(inSampleNote(opts.distillFrom));
  } else throw new Error("compress: give --prune X (with --model) or --distill-from TEACHER (with --arch)");
  if (opts.export) {
    const { manifest, warnings } = await exportModelDir(opts.out, { int8: true });
    for (const warning of warnings) console.error(`warning: ${warning}`);
    for (const file of [ONNX_FILE, INT8_ONNX_FILE]) {
      const gz = gzipSync(await readFile(join(opts.out, file)), { level: 9 }).length;
      console.log(`exported ${opts.out}/${file}: ${manifest.files[file]!.bytes} bytes, ${gz} gzip`);
    }
  }
});

/** A fold-trained source model's figures on its own file are in-sample. */
function inSampleNote(dir: string): string {
  return `note: ${dir} is the weight average of fold networks that trained on every row of this file, so its figures above are in-sample; compare the models on a file neither trained on (evaluate)`;
}
