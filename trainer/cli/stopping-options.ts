/** The early-stopping flags shared by `train` and `cv`: --early-stop and --patience. */
import type { Command } from "commander";
import { DEFAULT_TRAIN_ARGS } from "../train/train-args.ts";
import { positiveInt } from "./run-cli.ts";

export function addStoppingFlags(command: Command): Command {
  return command
    .option(
      "--early-stop <metric>",
      "validation metric to stop on: auc (mean of AUC, and R² for regression heads), logloss (mean), or auc|gauc|logloss|mse|mae|r2:<task>",
      DEFAULT_TRAIN_ARGS.earlyStop,
    )
    .option(
      "--patience <n>",
      `epochs without a better validation score before stopping (default ${DEFAULT_TRAIN_ARGS.patience})`,
      positiveInt,
    );
}
