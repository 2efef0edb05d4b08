/**
 * The optional model store: an R2 bucket holding model directories under content-addressed
 * prefixes (`models/<sha256>/manifest.json`, `.../model.onnx`) and a KV namespace whose
 * pointer keys (`models/current`) name the prefix to serve.
 */
import type { EdgeEnv, KvReader, R2BucketReader } from "../env.ts";

/** Which weights to serve from a model directory: model.onnx or model.int8.onnx (MTRANK_MODEL_WEIGHTS). */
export type ServedWeights = "float32" | "int8";

export interface ModelStore {
  bucket: R2BucketReader;
  pointers: KvReader;
  /** model.onnx or model.int8.onnx of each directory (MTRANK_MODEL_WEIGHTS, default float32). */
  weights: ServedWeights;
}

/** The R2 + KV model store, when both bindings exist. */
export function modelStore(env: EdgeEnv | undefined): ModelStore | undefined {
  const bucket = env?.MTRANK_MODELS;
  const pointers = env?.MTRANK_MODEL_POINTERS;
  if (!bucket || !pointers) return undefined;
  const weights = env?.MTRANK_MODEL_WEIGHTS ?? "float32";
  if (weights !== "float32" && weights !== "int8")
    throw new Error(`MTRANK_MODEL_WEIGHTS must be "float32" or "int8", got "${weights}"`);
  return { bucket, pointers, weights };
}
