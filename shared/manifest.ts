/** manifest.json of a model directory (docs/artifacts.md): read by the worker and tools. */
import type { EncoderLayout, EncoderState } from "./encoder/state.ts";
import type { FusionMode } from "./fusion.ts";

export type HeadType = "binary" | "regression";

export interface HeadInfo {
  name: string;
  type: HeadType;
  /** Name of the ONNX graph output holding this head, shape [n, 1]. */
  output: string;
  /** Regression heads: transform applied to labels at training time (the graph returns label units). */
  transform?: "none" | "log1p";
}

export interface TaskMetrics {
  auc?: number;
  logloss?: number;
  mse?: number;
  positiveRate?: number;
  count: number;
  /** AUC within each group (user or request) holding both classes, weighted by group size. */
  gauc?: number;
  /** At the evaluation threshold (default 0.5); precision/recall NaN when undefined. */
  accuracy?: number;
  precision?: number;
  recall?: number;
  f1?: number;
  /** Expected calibration error (10 equal-width probability bins unless evaluate says otherwise). */
  ece?: number;
  /** Mean predicted probability / observed positive rate (1 = calibrated on average). */
  calibrationRatio?: number;
  /** Regression heads, in (transformed) label units like mse. */
  mae?: number;
  /**
   * Regression heads: 1 − mse / variance of the (transformed) labels, the share of their variance
   * the model explains; 0 is what predicting their mean scores, and it can go below.
   */
  r2?: number;
}

export interface FileInfo {
  sha256: string;
  bytes: number;
}

/** How model.int8.onnx was made and how far it is from model.onnx (written by `export --int8`). */
export interface QuantizationInfo {
  /** The quantized graph, also listed in `files`. */
  file: string;
  /**
   * "int8-symmetric": dense kernels int8 with one scale per output channel, embedding table int8
   * with one scale per (id slot, column), zero points 0; biases and activations float32.
   */
  weights: "int8-symmetric";
  /**
   * How the dense layers use their int8 kernels: "integer" quantizes each activation at run time
   * (DynamicQuantizeLinear) and multiplies in integers (MatMulInteger), "qdq" dequantizes the
   * kernel (DequantizeLinear) before a float MatMul.
   */
  form: "integer" | "qdq";
  /** Bytes of the int8 file / bytes of model.onnx. */
  bytesRatio: number;
  /** Per head: max |int8 output − float32 output| over the probe batch (probability, binary heads). */
  maxAbsDiff: Record<string, number>;
  /** Rows of the probe batch: seeded random inputs over each feature's encoded range. */
  probeRows: number;
  /**
   * With `export --int8 --data F`: per binary head, float32 AUC − int8 AUC on F's labelled rows
   * (both graphs run by onnxruntime), and how many rows that was.
   */
  aucDrop?: Record<string, number>;
  aucRows?: number;
}

/** The plain inputs' dense columns and id slots that one side of a factorised graph reads, in its input order. */
export interface FactorisedSide {
  dense: number[];
  ids: number[];
}

/**
 * The factorised graph (written by `export --factorised`): the same heads as model.onnx, with
 * user and context features fed once per request (batch 1) and item features per candidate.
 */
export interface FactorisedInfo {
  /** Float32 graph, also listed in `files`. */
  file: string;
  /** int8 weights (with --int8), also listed in `files`. */
  int8File?: string;
  /** Input names; user inputs are [1, k], item inputs [n, k]. An input is absent when its side has none. */
  inputs: { userDense?: string; userIds?: string; itemDense?: string; itemIds?: string };
  user: FactorisedSide;
  item: FactorisedSide;
}

export interface ModelManifest {
  id: string;
  version: string;
  createdAt: string;
  arch: string;
  heads: HeadInfo[];
  fusion: { defaults: { weights: Record<string, number>; mode: FusionMode } };
  /** Graph input names; an input is absent when the model has no features of that kind. */
  inputs: { dense?: string; ids?: string };
  features: EncoderState;
  metrics: { validation: Record<string, TaskMetrics> };
  files: Record<string, FileInfo>;
  /** Present when the directory also holds an int8 graph. */
  quantization?: QuantizationInfo;
  /** Present when the directory also holds a factorised graph. */
  factorised?: FactorisedInfo;
  runtime: { tfjs: string; onnxOpset: number; onnxIrVersion: number; onnxruntimeWeb: string };
}

/**
 * A manifest whose encoder state is reduced to its layout (encoder/state.ts encoderLayout), less
 * what the worker neither reads nor serves (`runtime`, `quantization`): what the worker keeps of
 * a model once its encoder is compiled. A ModelManifest is one too.
 */
export interface ServedManifest extends Omit<ModelManifest, "features" | "runtime" | "quantization"> {
  features: EncoderLayout;
}
