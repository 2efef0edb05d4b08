/**
 * onnxruntime-web inside workerd, as measured in notes/ort-web-in-workerd.md: the wasm-only
 * build, its binary precompiled by wrangler, one thread, no proxy worker.
 */

import ortWasm from "onnxruntime-web/dist/ort-wasm-simd-threaded.wasm";
import * as ort from "onnxruntime-web/wasm";

export type Session = ort.InferenceSession;
export type RunResult = ort.InferenceSession.ReturnType;
export { Tensor } from "onnxruntime-web/wasm";

/**
 * Stands in for the wasm binary in `ort.env.wasm.wasmBinary`. workerd forbids compiling wasm
 * from bytes, so `WebAssembly.instantiate` is wrapped to instantiate the precompiled module when
 * it sees these bytes. Matched by content: the Emscripten glue passes a copy, not this array.
 */
const MARKER = new TextEncoder().encode("mtrank:precompiled:ort-wasm-simd-threaded");

interface WasmNamespace {
  instantiate(source: unknown, imports?: unknown): Promise<unknown>;
}

let configured = false;

function configure(): void {
  if (configured) return;
  configured = true;
  const wasm = (globalThis as unknown as { WebAssembly: WasmNamespace }).WebAssembly;
  const instantiate = wasm.instantiate.bind(wasm);
  wasm.instantiate = async (source, imports) =>
    isMarker(source)
      ? { instance: await instantiate(ortWasm, imports), module: ortWasm }
      : instantiate(source, imports);
  ort.env.wasm.wasmBinary = MARKER;
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.proxy = false;
  ort.env.logLevel = "error";
}

function isMarker(source: unknown): boolean {
  let bytes: Uint8Array;
  if (source instanceof ArrayBuffer) bytes = new Uint8Array(source);
  else if (ArrayBuffer.isView(source))
    bytes = new Uint8Array(source.buffer, source.byteOffset, source.byteLength);
  else return false;
  return bytes.length === MARKER.length && bytes.every((b, i) => b === MARKER[i]);
}

/** Creates an inference session; the first call also instantiates the ORT runtime (~0.3 s). */
export async function createSession(model: ArrayBuffer | Uint8Array): Promise<Session> {
  configure();
  const bytes = model instanceof Uint8Array ? model : new Uint8Array(model);
  return ort.InferenceSession.create(bytes, { executionProviders: ["wasm"], graphOptimizationLevel: "all" });
}
