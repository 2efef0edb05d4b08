/**
 * The validation score early stopping maximises, chosen with --early-stop:
 *
 *   auto (default)  auc, or deviance when the validation part has under SMALL_VALIDATION_ROWS rows
 *   auc             the mean over heads of AUC (binary heads) and R² (regression heads). A
 *                   task that gains signal moves either by similar amounts, so every head has a
 *                   say in which epoch is best (a mean of AUCs alone leaves a regression head
 *                   beside a binary one none)
 *   deviance        the mean over heads of the share of deviance explained: 1 − logloss / the
 *                   logloss of always predicting the validation positive rate (binary heads),
 *                   R² (regression heads). Each head on the same 0-to-1 scale, as with auc, but
 *                   an average over every row's probability rather than a rank statistic
 *   logloss         −mean logloss over binary heads
 *   auc:<task>, gauc:<task>, logloss:<task>, mse:<task>, mae:<task>, r2:<task>   one task's metric
 *
 * Loss-like metrics are negated so that higher is always better.
 */
import type { TaskMetrics } from "../../shared/manifest.ts";
import { mean } from "../core/metrics.ts";
import type { HeadSpec } from "../models/types.ts";

const TASK_METRICS = ["auc", "gauc", "logloss", "mse", "mae", "r2"] as const;
type TaskMetric = (typeof TASK_METRICS)[number];
const LOWER_IS_BETTER: ReadonlySet<TaskMetric> = new Set(["logloss", "mse", "mae"]);

export type ValidationScore = (metrics: Record<string, TaskMetrics>) => number;

/**
 * Below this many validation rows `auto` stops on deviance. On a few hundred rows (a hundred-odd
 * positives) AUC moves between epochs by more than the model does, and early stopping kept an
 * epoch by chance: on NMES1988 (310 validation rows) shared-bottom stopped at epoch 1 on one seed
 * of three. Deviance, an average over every row, varies less; there shared-bottom, esmm and the
 * single-task network gain 0.006-0.007 test AUC, mmoe and ple keep theirs (seeds 42/11/12).
 */
export const SMALL_VALIDATION_ROWS = 2000;

/** The criterion `choice` names, `auto` resolved for a validation part of `validRows` rows. */
export function resolveEarlyStop(choice: string, validRows: number): string {
  if (choice !== "auto") return choice;
  return validRows < SMALL_VALIDATION_ROWS ? "deviance" : "auc";
}

/** Parses an --early-stop value against the model's heads; throws naming the option. */
export function validationScore(
  choice: string,
  heads: readonly HeadSpec[],
  validRows = Number.POSITIVE_INFINITY,
): ValidationScore {
  const binary = heads.filter((h) => h.type === "binary").map((h) => h.name);
  // Every head on a 0-to-1 scale, higher better: a binary head by `score`, a regression head by R².
  const meanOverHeads =
    (score: (m: TaskMetrics | undefined) => number | undefined): ValidationScore =>
    (m) => {
      const scores = heads
        .map((h) => (h.type === "binary" ? score(m[h.name]) : m[h.name]?.r2) ?? Number.NaN)
        .filter(Number.isFinite);
      return scores.length > 0 ? mean(scores) : Number.NEGATIVE_INFINITY;
    };
  const resolved = resolveEarlyStop(choice, validRows);
  if (resolved === "deviance") return meanOverHeads(devianceExplained);
  if (resolved === "auc") return meanOverHeads((m) => m?.auc);
  if (resolved === "logloss") {
    if (binary.length === 0) throw new Error("--early-stop: logloss needs a binary head");
    return (m) => -mean(binary.map((t) => m[t]?.logloss ?? Number.NaN));
  }
  const [metric, task] = resolved.split(":") as [string, string | undefined];
  if (!task || !(TASK_METRICS as readonly string[]).includes(metric))
    throw new Error(
      `--early-stop: expected auto, auc, deviance, logloss or <metric>:<task> with metric ${TASK_METRICS.join("|")}, got "${resolved}"`,
    );
  const head = heads.find((h) => h.name === task);
  if (!head)
    throw new Error(`--early-stop: no task named "${task}" (tasks: ${heads.map((h) => h.name).join(", ")})`);
  const regression = metric === "mse" || metric === "mae" || metric === "r2";
  if ((head.type === "regression") !== regression)
    throw new Error(`--early-stop: ${metric} does not apply to the ${head.type} task "${task}"`);
  const sign = LOWER_IS_BETTER.has(metric as TaskMetric) ? -1 : 1;
  return (m) => {
    const value = m[task]?.[metric as TaskMetric];
    return typeof value === "number" && Number.isFinite(value) ? sign * value : Number.NEGATIVE_INFINITY;
  };
}

/** 1 − logloss / the logloss of predicting the positive rate; undefined without both classes. */
function devianceExplained(m: TaskMetrics | undefined): number | undefined {
  const p = m?.positiveRate;
  if (m?.logloss === undefined || p === undefined || !(p > 0 && p < 1)) return undefined;
  const prior = -(p * Math.log(p) + (1 - p) * Math.log(1 - p));
  return 1 - m.logloss / prior;
}
