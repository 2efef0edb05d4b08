/**
 * onnxruntime-web on an already compiled wasm module (notes/ort-web-in-workerd.md): workerd
 * forbids compiling wasm from bytes, so wrangler compiles the binary at build time and the
 * loader is handed this module instead. Kept apart from ./ort.ts, which imports the module the
 * workerd way, so that Node benchmarks can run the same recipe on a module they compiled.
 */
import * as ort from "onnxruntime-web/wasm";

/**
 * Stands in for the wasm binary in `ort.env.wasm.wasmBinary`. `WebAssembly.instantiate` is
 * wrapped to instantiate the precompiled module when it sees these bytes. Matched by content: the
 * Emscripten glue passes a copy, not this array.
 */
const MARKER = new TextEncoder().encode("mtrank:precompiled:ort-wasm-simd-threaded");

interface WasmNamespace {
  instantiate(source: unknown, imports?: unknown): Promise<unknown>;
}

/** Points onnxruntime-web (one thread, no proxy worker) at `compiled`; call once per isolate. */
export function usePrecompiledWasm(compiled: object): void {
  const wasm = (globalThis as unknown as { WebAssembly: WasmNamespace }).WebAssembly;
  const instantiate = wasm.instantiate.bind(wasm);
  wasm.instantiate = async (source, imports) =>
    isMarker(source)
      ? { instance: await instantiate(compiled, imports), module: compiled }
      : instantiate(source, imports);
  ort.env.wasm.wasmBinary = MARKER;
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.proxy = false;
}

function isMarker(source: unknown): boolean {
  let bytes: Uint8Array;
  if (source instanceof ArrayBuffer) bytes = new Uint8Array(source);
  else if (ArrayBuffer.isView(source))
    bytes = new Uint8Array(source.buffer, source.byteOffset, source.byteLength);
  else return false;
  return bytes.length === MARKER.length && bytes.every((b, i) => b === MARKER[i]);
}
