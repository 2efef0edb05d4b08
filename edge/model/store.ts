/**
 * The optional model store: an R2 bucket holding model directories under content-addressed
 * prefixes (`models/<sha256>/manifest.json`, `.../model.onnx`) and a KV namespace whose
 * pointer keys (`models/current`) name the prefix to serve. Only the calls the worker makes
 * are typed here (no @cloudflare/workers-types in this project).
 */
import type { ServedWeights } from "./remote.ts";

export interface R2ObjectBody {
  /** Bytes in the object, known before its body is read (checked against the caps in remote.ts). */
  size: number;
  arrayBuffer(): Promise<ArrayBuffer>;
  text(): Promise<string>;
}
export interface R2BucketReader {
  get(key: string): Promise<R2ObjectBody | null>;
}
export interface KvReader {
  get(key: string): Promise<string | null>;
}

export interface ModelStore {
  bucket: R2BucketReader;
  pointers: KvReader;
  /** model.onnx or model.int8.onnx of each directory (MTRANK_MODEL_WEIGHTS, default float32). */
  weights: ServedWeights;
}
