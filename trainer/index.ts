/**
 * The trainer's API ("mtrank/trainer"): the functions the CLI verbs call, for a user's own Node
 * scripts. The package ships TypeScript, so such a script runs under tsx, a dependency of mtrank:
 *
 *   node --import mtrank/register train-nightly.mjs      (or: npx tsx train-nightly.ts)
 *
 *   import { exportModelDir, runTraining } from "mtrank/trainer";
 *   await runTraining({ data: "logs.csv", spec: "spec.json", arch: "mmoe", out: "model" });
 *   await exportModelDir("model", { int8: true });
 */
export { loadTrainedModel, saveTrainedModel, type TrainedModel } from "./artifact/trained-model.ts";
export { type DistillCommand, type DistillSummary, runDistill } from "./compress/run-distill.ts";
export { type PruneCommand, type PruneSummary, runPrune } from "./compress/run-prune.ts";
export { readSpecFile } from "./data/read-spec.ts";
export { type EvaluationOptions, type EvaluationReport, evaluateModel } from "./evaluate/evaluate-model.ts";
export {
  ExportError,
  type ExportOptions,
  type ExportResult,
  exportModelDir,
  INT8_ONNX_FILE,
  ONNX_FILE,
} from "./export/export-model.ts";
export { ARCHITECTURES } from "./models/registry.ts";
export { openServedModel, type ServedModel, scoreRows, specForModel } from "./predict/served-model.ts";
export {
  DEFAULT_SIMULATE_OPTIONS,
  type SimulateOptions,
  simulate,
  type WriteSimulationResult,
  writeSimulation,
} from "./simulate/simulator.ts";
export { type CrossValidation, crossValidate } from "./workflows/cross-validate.ts";
export { runTraining, type TrainCommand, type TrainSummary } from "./workflows/train-and-report.ts";
