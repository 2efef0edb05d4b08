/** The early-stopping flags shared by `train` and `cv`: --early-stop and --patience. */
import type { Command } from "commander";
import { SMALL_VALIDATION_ROWS } from "../train/early-stopping.ts";
import { DEFAULT_TRAIN_ARGS } from "../train/train-args.ts";
import { positiveInt } from "./run-cli.ts";

export function addStoppingFlags(command: Command): Command {
  return command
    .option(
      "--early-stop <metric>",
      `validation metric to stop on: auto (auc, or deviance under ${SMALL_VALIDATION_ROWS} validation rows), auc (mean of AUC, and R² for regression heads), deviance (mean share of deviance explained, and R²), logloss (mean), or auc|gauc|logloss|mse|mae|r2:<task>`,
      DEFAULT_TRAIN_ARGS.earlyStop,
    )
    .option(
      "--patience <n>",
      `epochs without a better validation score before stopping (default ${DEFAULT_TRAIN_ARGS.patience})`,
      positiveInt,
    );
}
