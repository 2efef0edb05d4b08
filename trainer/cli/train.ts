/** npm run train -- --data F --spec S --arch shared-bottom --out DIR [...] */
import { Command, Option } from "commander";
import { DEFAULT_FIT_OPTIONS, OVERFLOW_HASH_BUCKETS } from "../../shared/encoder/fit.ts";
import { exportModelDir } from "../export/export-model.ts";
import { ARCHITECTURES } from "../models/registry.ts";
import { BACKEND_CHOICES } from "../train/backend.ts";
import { CALIBRATIONS } from "../train/calibrate-heads.ts";
import { DEFAULT_LEARNING_RATES, OPTIMIZERS } from "../train/dense-optimizer.ts";
import { FOLD_AVERAGE_K, FOLD_AVERAGE_ROWS } from "../train/fold-average.ts";
import { MAX_ID_DROPOUT } from "../train/id-dropout.ts";
import { SCHEDULES } from "../train/schedule.ts";
import {
  MAX_BATCH,
  MAX_EPOCHS,
  MIN_BATCH,
  MIN_EPOCHS,
  MIN_PARALLEL_BATCH,
  MIN_STEPS,
  PARALLEL_ROWS,
  STEPS_PER_EPOCH,
} from "../train/step-budget.ts";
import { WEIGHTINGS } from "../train/task-weighting.ts";
import { DEFAULT_TRAIN_ARGS, EMBEDDING_OPTIMIZERS, pickTrainArgs } from "../train/train-args.ts";
import { FEW_POSITIVES, runTraining } from "../workflows/train-and-report.ts";
import { type ArchFlags, addArchFlags, archOptions } from "./arch-options.ts";
import { headlineMetrics, metricsTable } from "./format.ts";
import { epochProgress } from "./progress.ts";
import {
  fraction,
  nonNegativeInt,
  nonNegativeNumber,
  positiveInt,
  positiveNumber,
  runCli,
  shareList,
  weightList,
} from "./run-cli.ts";
import { addStoppingFlags } from "./stopping-options.ts";

const program = new Command("train")
  .description("Train a multi-task ranking network and export it (model.onnx + manifest.json).")
  .requiredOption("--data <file>", "CSV or JSONL log (.gz accepted)")
  .requiredOption("--spec <file>", "dataset spec (JSON)")
  .requiredOption("--out <dir>", "model directory to write")
  .option("--arch <name>", `architecture: ${Object.keys(ARCHITECTURES).join(", ")}`, DEFAULT_TRAIN_ARGS.arch)
  .option(
    "--epochs <n>",
    `maximum epochs; early stopping may end sooner (default ${MIN_EPOCHS}, more on small files: at least ${MIN_STEPS.toLocaleString("en-US")} steps, at most ${MAX_EPOCHS} epochs)`,
    positiveInt,
  )
  .option("--seed <n>", `random seed (default ${DEFAULT_TRAIN_ARGS.seed})`, positiveInt)
  .option(
    "--valid-fraction <x>",
    "fraction of rows (or groups) held out for validation (default: 2,000 rows, between 3% and 10% of the file)",
    fraction,
  )
  .option("--time-column <name>", "validate on the latest rows by this column (numbers or dates)")
  .option(
    "--max-bad-rows <n>",
    `bad rows to skip and count before stopping (default ${DEFAULT_TRAIN_ARGS.maxBadRows}: stop at the first)`,
    nonNegativeInt,
  )
  .option("--task-weights <list>", "loss weights, e.g. click=1,purchase=2", weightList)
  .addOption(
    new Option(
      "--task-weighting <kind>",
      "static (the weights as given), uncertainty (learned) or dwa (dynamic weight average)",
    )
      .choices(WEIGHTINGS)
      .default(DEFAULT_TRAIN_ARGS.taskWeighting),
  )
  .option(
    "--ranking-loss <w>",
    "add a listwise ranking loss within groups with this weight (needs spec.group)",
    positiveNumber,
  )
  .addOption(
    new Option(
      "--calibration <kind>",
      "binary heads: platt (scale and shift of each logit fitted on validation after training) or none",
    )
      .choices(CALIBRATIONS)
      .default(DEFAULT_TRAIN_ARGS.calibration),
  )
  .option(
    "--embedding-dim <n>",
    `embedding size for categorical features and buckets (default ${DEFAULT_TRAIN_ARGS.embeddingDim})`,
    positiveInt,
  )
  .option(
    "--batch-size <n>",
    `mini-batch size (default ${MAX_BATCH}; on small files down to ${MIN_BATCH}, for about ${STEPS_PER_EPOCH} steps an epoch)`,
    positiveInt,
  )
  .option(
    "--learning-rate <x>",
    `peak learning rate (default ${DEFAULT_LEARNING_RATES.adam} with adam, ${DEFAULT_LEARNING_RATES.adagrad} with adagrad)`,
    positiveNumber,
  )
  .addOption(
    new Option("--optimizer <name>", "the dense layers' optimiser")
      .choices(OPTIMIZERS)
      .default(DEFAULT_TRAIN_ARGS.optimizer),
  )
  .addOption(
    new Option(
      "--embedding-optimizer <name>",
      "the embedding table's optimiser, on the rows a batch reads; auto: adagrad for id-like features (over 100 values) beside adam, else --optimizer",
    )
      .choices(EMBEDDING_OPTIMIZERS)
      .default(DEFAULT_TRAIN_ARGS.embeddingOptimizer),
  )
  .option(
    "--embedding-learning-rate <x>",
    "the embedding table's peak learning rate (default: --learning-rate with one optimiser; adagrad beside adam, auto's id rows included: 0.5 at batches of 512, in proportion to the batch)",
    positiveNumber,
  )
  .addOption(
    new Option("--lr-schedule <name>", "cosine: warm-up then cosine decay to 5%; constant")
      .choices(SCHEDULES)
      .default(DEFAULT_TRAIN_ARGS.schedule),
  )
  .addOption(
    new Option(
      "--backend <name>",
      "tfjs backend (auto: a hardware WebGPU adapter, else the fastest present, tensorflow -> wasm -> cpu; webgpu: any adapter)",
    )
      .choices(BACKEND_CHOICES)
      .default(DEFAULT_TRAIN_ARGS.backend),
  )
  .option(
    "--embedding-l2 <x>",
    `L2 penalty on the embedding rows each batch reads, each row's share divided by its reads in the batch (default ${DEFAULT_TRAIN_ARGS.embeddingL2}; 0 turns it off)`,
    nonNegativeNumber,
  )
  .option(
    "--kernel-l2 <x>",
    `L2 penalty on the dense layers' kernels (default ${DEFAULT_TRAIN_ARGS.kernelL2}; 0 turns it off)`,
    nonNegativeNumber,
  )
  .option("--l2 <x>", "sets both --embedding-l2 and --kernel-l2 (either given wins)", nonNegativeNumber)
  .option(
    "--workers <n>",
    `threads computing each batch's gradients (2: split every batch with a worker thread; default 2 from ${PARALLEL_ROWS.toLocaleString("en-US")} training rows and batches of ${MIN_PARALLEL_BATCH} rows on 2+ cores, else 1)`,
    positiveInt,
  )
  .option(
    "--average-folds <k>",
    `train k networks from one start, each stopping early on its own k-th of the rows, and serve their weight average (--valid-fraction then unused; default ${FOLD_AVERAGE_K} under ${FOLD_AVERAGE_ROWS.toLocaleString("en-US")} rows without --time-column, else 1: one network on a held-out part)`,
    positiveInt,
  )
  .option(
    "--id-dropout <list>",
    `read id-like features as never seen in a share of each epoch's rows, e.g. item=0.1: new items then rank by their other features (default none; at most ${MAX_ID_DROPOUT})`,
    shareList(MAX_ID_DROPOUT),
  )
  .option("--resume", "continue an interrupted run from OUT/checkpoint (same data, spec and options)")
  .option("--init-from <dir>", "warm start: begin from an earlier model directory's weights")
  .option("--no-export", "only train; run `npm run export` later");
addArchFlags(program);
addStoppingFlags(program);

await runCli(async () => {
  const opts = program.parse().opts();
  const started = performance.now();
  const progress = epochProgress();
  const summary = await runTraining({
    data: opts.data,
    spec: opts.spec,
    out: opts.out,
    // The flags are the training arguments of the same names (--lr-schedule: schedule).
    ...pickTrainArgs({ ...opts, schedule: opts.lrSchedule, options: archOptions(opts as ArchFlags) }),
    arch: opts.arch,
    initFrom: opts.initFrom,
    resume: opts.resume,
    onBatch: (p) => progress.update(p),
    onEpoch: (log) => {
      progress.end();
      console.log(
        `epoch ${log.epoch}  loss ${log.trainLoss.toFixed(4)}  ${headlineMetrics(log.validation)}  (${log.seconds.toFixed(1)} s)`,
      );
    },
    // A run that fails mid-epoch (a diverged loss) clears the bar first: the error's one line
    // then stands on its own and the terminal gets its cursor back.
  }).finally(() => progress.end());
  if (summary.warmStart) {
    const w = summary.warmStart;
    console.log(
      `warm start from ${opts.initFrom}: ${w.copied.length} parameters copied, ${w.fresh.length} fresh${w.fresh.length > 0 ? ` (${w.fresh.join("; ")})` : ""}; embedding rows ${w.embeddingRows.copied}/${w.embeddingRows.total} carried over`,
    );
  }
  if (summary.hashed.length > 0)
    console.log(
      `hashed into ${OVERFLOW_HASH_BUCKETS} buckets (more than ${DEFAULT_FIT_OPTIONS.maxDistinct} distinct values; set hashBuckets in the spec to choose): ${summary.hashed.join(", ")}`,
    );
  if (summary.constant.length > 0)
    console.error(
      `warning: numeric features without variation in the training rows (the model learns nothing from them; drop them from the spec, or train on rows where they vary): ${summary.constant.join(", ")}`,
    );
  const few = Object.entries(summary.fewPositives);
  if (few.length > 0)
    console.error(
      `warning: binary tasks with fewer than ${FEW_POSITIVES} positive training rows (their heads learn little beyond the base rate): ${few.map(([t, n]) => `${t} ${n}`).join(", ")}`,
    );
  const dropped = Object.entries(summary.dropped).filter(([, n]) => n > 0);
  if (dropped.length > 0)
    console.error(
      `warning: bag values past the feature's maxValues dropped (raise maxValues in the spec to keep more): ${dropped.map(([f, n]) => `${f} ${n}`).join(", ")}`,
    );
  if (summary.frequency.length > 0)
    console.log(
      `frequency columns (training counts; "frequency": false in the spec turns one off): ${summary.frequency.join(", ")}`,
    );
  if (summary.unseenFitted.features.length > 0)
    console.log(
      `unseen rows fitted (what a new value reads; every other weight held): ${summary.unseenFitted.features.join(", ")} (${summary.unseenFitted.seconds.toFixed(1)} s)`,
    );
  if (summary.targetEncoded.length > 0)
    console.log(
      `target columns (out-of-fold positive rates; "targetEncoding": false in the spec turns one off): ${summary.targetEncoded.join(", ")}`,
    );
  if (summary.rowsSkipped > 0)
    console.log(
      `skipped ${summary.rowsSkipped} bad rows (within --max-bad-rows ${opts.maxBadRows}), first: ${summary.skipped.join("; ")}`,
    );
  const unlabelled = Object.entries(summary.unlabelled).filter(([, n]) => n > 0);
  if (unlabelled.length > 0)
    console.log(
      `rows without a label, left out of that task's loss and metrics (missingLabel "mask"): ${unlabelled.map(([t, n]) => `${t} ${n}`).join(", ")}`,
    );
  const seconds = `${((performance.now() - started) / 1000).toFixed(1)} s`;
  const threads = `backend ${summary.backend}${summary.workers > 1 ? ` (${summary.workers} threads)` : ""}, batch ${summary.batchSize}`;
  console.log(
    summary.folds
      ? `trained ${opts.arch} as the weight average of ${summary.folds.length} fold networks on ${summary.trainRows} rows (${summary.split} folds of ${summary.folds.map((f) => f.validRows).join("/")} rows), ${threads}, best epochs ${summary.folds.map((f) => f.bestEpoch).join(", ")} of at most ${summary.maxEpochs} (by ${summary.earlyStop}), ${seconds}; validation: every row scored by the fold network that did not train on it`
      : `trained ${opts.arch} on ${summary.trainRows} rows (validation ${summary.validRows}, ${summary.split} split), ${threads}, best epoch ${summary.bestEpoch} of at most ${summary.maxEpochs} (by ${summary.earlyStop}), ${seconds}`,
  );
  if (summary.calibration)
    console.log(
      `calibrated on validation (Platt): ${Object.entries(summary.calibration)
        .map(([h, c]) => `${h} ECE ${c.eceBefore.toFixed(4)} -> ${c.eceAfter.toFixed(4)}`)
        .join(", ")}`,
    );
  console.log(metricsTable(summary.validation));
  if (opts.export) {
    const { manifest, warnings } = await exportModelDir(opts.out);
    for (const warning of warnings) console.error(`warning: ${warning}`);
    console.log(
      `exported ${opts.out}/model.onnx (${manifest.files["model.onnx"]!.bytes} bytes), manifest ${manifest.id}`,
    );
  }
});
