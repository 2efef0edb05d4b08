/**
 * The validation score early stopping maximises, chosen with --early-stop:
 *
 *   auc (default)   the mean over heads of AUC (binary heads) and R² (regression heads). A
 *                   task that gains signal moves either by similar amounts, so every head has a
 *                   say in which epoch is best (a mean of AUCs alone leaves a regression head
 *                   beside a binary one none)
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

/** Parses an --early-stop value against the model's heads; throws naming the option. */
export function validationScore(choice: string, heads: readonly HeadSpec[]): ValidationScore {
  const binary = heads.filter((h) => h.type === "binary").map((h) => h.name);
  if (choice === "auc")
    return (m) => {
      const scores = heads
        .map((h) => (h.type === "binary" ? m[h.name]?.auc : m[h.name]?.r2) ?? Number.NaN)
        .filter(Number.isFinite);
      return scores.length > 0 ? mean(scores) : Number.NEGATIVE_INFINITY;
    };
  if (choice === "logloss") {
    if (binary.length === 0) throw new Error("--early-stop: logloss needs a binary head");
    return (m) => -mean(binary.map((t) => m[t]?.logloss ?? Number.NaN));
  }
  const [metric, task] = choice.split(":") as [string, string | undefined];
  if (!task || !(TASK_METRICS as readonly string[]).includes(metric))
    throw new Error(
      `--early-stop: expected auc, logloss or <metric>:<task> with metric ${TASK_METRICS.join("|")}, got "${choice}"`,
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
