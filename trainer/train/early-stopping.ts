/**
 * The validation score early stopping maximises, chosen with --early-stop:
 *
 *   auc (default)   mean AUC over binary heads (−mean MSE when there are none)
 *   logloss         −mean logloss over binary heads
 *   auc:<task>, gauc:<task>, logloss:<task>, mse:<task>, mae:<task>   one task's metric
 *
 * Loss-like metrics are negated so that higher is always better.
 */
import type { TaskMetrics } from "../../shared/manifest.ts";
import type { HeadSpec } from "../models/types.ts";
import { mean } from "./metrics.ts";

const TASK_METRICS = ["auc", "gauc", "logloss", "mse", "mae"] as const;
type TaskMetric = (typeof TASK_METRICS)[number];
const LOWER_IS_BETTER: ReadonlySet<TaskMetric> = new Set(["logloss", "mse", "mae"]);

export type ValidationScore = (metrics: Record<string, TaskMetrics>) => number;

/** Parses an --early-stop value against the model's heads; throws naming the option. */
export function validationScore(choice: string, heads: readonly HeadSpec[]): ValidationScore {
  const binary = heads.filter((h) => h.type === "binary").map((h) => h.name);
  if (choice === "auc")
    return (m) => {
      const aucs = binary.map((t) => m[t]?.auc ?? Number.NaN).filter(Number.isFinite);
      return aucs.length > 0 ? mean(aucs) : -mean(heads.map((h) => m[h.name]?.mse ?? 0));
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
  const regression = metric === "mse" || metric === "mae";
  if ((head.type === "regression") !== regression)
    throw new Error(`--early-stop: ${metric} does not apply to the ${head.type} task "${task}"`);
  const sign = LOWER_IS_BETTER.has(metric as TaskMetric) ? -1 : 1;
  return (m) => {
    const value = m[task]?.[metric as TaskMetric];
    return typeof value === "number" && Number.isFinite(value) ? sign * value : Number.NEGATIVE_INFINITY;
  };
}
