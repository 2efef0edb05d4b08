/**
 * onnxruntime-web inside workerd, as measured in notes/ort-web-in-workerd.md: the wasm-only
 * build, its binary precompiled by wrangler, one thread, no proxy worker.
 */

import ortWasm from "onnxruntime-web/dist/ort-wasm-simd-threaded.wasm";
import * as ort from "onnxruntime-web/wasm";
import { usePrecompiledWasm } from "./precompiled-wasm.ts";

export type Session = ort.InferenceSession;
export type RunResult = ort.InferenceSession.ReturnType;
export { Tensor } from "onnxruntime-web/wasm";

let configured = false;

function configure(): void {
  if (configured) return;
  configured = true;
  usePrecompiledWasm(ortWasm);
  ort.env.logLevel = "error";
}

/** Creates an inference session; the first call also instantiates the ORT runtime (~0.3 s). */
export async function createSession(model: ArrayBuffer | Uint8Array): Promise<Session> {
  configure();
  const bytes = model instanceof Uint8Array ? model : new Uint8Array(model);
  return ort.InferenceSession.create(bytes, { executionProviders: ["wasm"], graphOptimizationLevel: "all" });
}
