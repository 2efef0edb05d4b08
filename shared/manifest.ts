/** manifest.json of a model directory (DESIGN.md "Artifact layout"): read by the worker and tools. */
import type { EncoderState } from "./encoder/state.ts";
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
}

export interface FileInfo {
  sha256: string;
  bytes: number;
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
  runtime: { tfjs: string; onnxOpset: number; onnxIrVersion: number; onnxruntimeWeb: string };
}
