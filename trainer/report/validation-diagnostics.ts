/**
 * Report diagnostics from the network's own validation outputs, so `train` can write calibration
 * curves and the full metrics table without an `evaluate` run. For
 * ../workflows/train-and-report.ts:
 *   await writeReport(dir, trained, validationDiagnostics(config.heads, valid.labels,
 *     predictNetwork(result.params, config, valid), taskWeights));
 */
import { diagnoseTasks } from "../metrics/diagnostics.ts";
import type { HeadOutputs } from "../metrics/task-metrics.ts";
import type { ReportDiagnostics } from "./training-report.ts";

export function validationDiagnostics(
  heads: readonly HeadOutputs[],
  labels: Readonly<Record<string, ArrayLike<number>>>,
  outputs: Readonly<Record<string, ArrayLike<number>>>,
  taskWeights: Readonly<Record<string, number>>,
  groups?: readonly string[] | null,
): ReportDiagnostics {
  const rows = Object.values(labels)[0]?.length ?? 0;
  return {
    source: `the validation split (${rows} rows, TensorFlow.js outputs of the best epoch)`,
    ...diagnoseTasks(heads, labels, outputs, { weights: taskWeights, groups: groups ?? null }),
  };
}
