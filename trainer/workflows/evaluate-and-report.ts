/**
 * The `evaluate` verb: an exported model directory scored on a labelled file by onnxruntime (as
 * the edge runs it), and, when asked, DIR/report.html rebuilt with those numbers.
 */
import { loadTrainedModel } from "../artifact/trained-model.ts";
import { loadDataset } from "../data/load-dataset.ts";
import { type Comparison, compareScored } from "../evaluate/compare-models.ts";
import {
  type EvaluationOptions,
  type EvaluationReport,
  evaluateModel,
  evaluateWithScores,
} from "../evaluate/evaluate-model.ts";
import { openServedModel, specForFile, specForModel } from "../predict/served-model.ts";
import { writeReport } from "../report/training-report.ts";

export interface EvaluateCommand {
  /** The exported model directory. */
  model: string;
  /** Labelled CSV or JSONL (.gz accepted). */
  data: string;
  /** Dataset spec (default: the one saved with the model). */
  spec?: string;
  /** Score model.int8.onnx instead of model.onnx. */
  int8?: boolean;
  options?: EvaluationOptions;
}

export async function evaluateModelDir(cmd: EvaluateCommand): Promise<EvaluationReport> {
  const model = await openServedModel(cmd.model, cmd.int8 ?? false);
  return evaluateModel(model, cmd.data, await commandSpec(cmd), cmd.options);
}

/**
 * `evaluate --against OLD`: the model evaluated as evaluateModelDir does, and OLD scored on the
 * same rows (the file read once, by the evaluated model's spec), each binary task's AUC
 * difference with its paired-bootstrap interval.
 */
export async function compareModelDirs(
  cmd: EvaluateCommand & { against: string },
): Promise<{ report: EvaluationReport; comparison: Comparison }> {
  const int8 = cmd.int8 ?? false;
  const [model, other] = await Promise.all([
    openServedModel(cmd.model, int8),
    openServedModel(cmd.against, int8, "--against"),
  ]);
  const spec = await commandSpec(cmd);
  const data = await loadDataset(cmd.data, spec);
  const mine = await evaluateWithScores(model, data, spec, cmd.options);
  // Importance is the evaluated model's question; the other model is scored for the comparison.
  const { importance: _, ...plain } = cmd.options ?? {};
  const theirs = await evaluateWithScores(other, data, spec, plain);
  return { report: mine.report, comparison: compareScored(mine, theirs) };
}

async function commandSpec(cmd: EvaluateCommand) {
  const spec = await specForModel(cmd.model, cmd.spec);
  if (!spec) throw new Error(`--spec: ${cmd.model} has no spec.json; name the dataset spec with --spec`);
  return specForFile(spec, cmd.data);
}

/**
 * Rewrites DIR/report.html with an evaluation's numbers (calibration, correlation, importance);
 * the report is rebuilt from the training record, so its curves and set-up are kept. Returns its
 * path.
 */
export async function reportEvaluation(
  cmd: Pick<EvaluateCommand, "model" | "data">,
  report: EvaluationReport,
): Promise<string> {
  const trained = await loadTrainedModel(cmd.model).catch(() => {
    throw new Error(`--report: ${cmd.model} has no training record (training/network.json) to build on`);
  });
  const source = `${cmd.data} (${report.rows} rows, ${report.model.file} run by onnxruntime)`;
  return writeReport(cmd.model, trained, { source, ...report });
}
