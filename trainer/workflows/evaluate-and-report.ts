/**
 * The `evaluate` verb: an exported model directory scored on a labelled file by onnxruntime (as
 * the edge runs it), and, when asked, DIR/report.html rebuilt with those numbers.
 */
import { loadTrainedModel } from "../artifact/trained-model.ts";
import { type EvaluationOptions, type EvaluationReport, evaluateModel } from "../evaluate/evaluate-model.ts";
import { openServedModel, specForModel } from "../predict/served-model.ts";
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
  const spec = await specForModel(cmd.model, cmd.spec);
  if (!spec) throw new Error(`--spec: ${cmd.model} has no spec.json; name the dataset spec with --spec`);
  return evaluateModel(model, cmd.data, spec, cmd.options);
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
