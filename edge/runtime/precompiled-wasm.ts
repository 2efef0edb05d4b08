/**
 * onnxruntime-web on an already compiled wasm module (docs/notes/ort-web-in-workerd.md): workerd
 * forbids compiling wasm from bytes, so wrangler compiles the binary at build time and the
 * loader is handed this module instead. Kept apart from ./ort.ts, which imports the module the
 * workerd way, so that Node benchmarks and the snapshot builder run the same recipe on a module
 * they compiled.
 */
import * as ort from "onnxruntime-web/wasm";
import { initFromSnapshot, memoryImport, type OrtSnapshot, snapshotMismatch } from "./ort-snapshot.ts";

/**
 * Stands in for the wasm binary in `ort.env.wasm.wasmBinary`. `WebAssembly.instantiate` is
 * wrapped to instantiate the precompiled module when it sees these bytes. Matched by content: the
 * Emscripten glue passes a copy, not this array.
 */
const MARKER = new TextEncoder().encode("mtrank:precompiled:ort-wasm-simd-threaded");

interface WasmNamespace {
  instantiate(source: unknown, imports?: unknown): Promise<unknown>;
}

/** What became of the snapshot: not given, applied, or why not. */
export type SnapshotUse = "none" | "applied" | `skipped: ${string}`;

let snapshotUse: SnapshotUse = "none";

/** Whether the isolate's onnxruntime started from the snapshot (known once a session exists). */
export function ortSnapshotUse(): SnapshotUse {
  return snapshotUse;
}

/**
 * Points onnxruntime-web at `compiled` with the worker's settings (one thread, no proxy worker,
 * logging "error"); call once per isolate. With `snapshot`, ORT's initialisation is written
 * into memory instead of run (./ort-snapshot.ts) when the snapshot fits this binary.
 */
export function usePrecompiledWasm(compiled: object, snapshot?: OrtSnapshot): void {
  const wasm = (globalThis as unknown as { WebAssembly: WasmNamespace }).WebAssembly;
  const instantiate = wasm.instantiate.bind(wasm);
  const mismatch = snapshot ? snapshotMismatch(snapshot, compiled, ort.env.versions.web ?? "") : undefined;
  if (mismatch) snapshotUse = `skipped: ${mismatch}`;
  wasm.instantiate = async (source, imports) => {
    if (!isMarker(source)) return instantiate(source, imports);
    const instance = (await instantiate(compiled, imports)) as { exports: Record<string, unknown> };
    if (!snapshot || mismatch) return { instance, module: compiled };
    const memory = memoryImport(imports);
    if (!memory) {
      snapshotUse = "skipped: the module imports no memory";
      return { instance, module: compiled };
    }
    const exports = initFromSnapshot(instance.exports, memory, snapshot, (applied) => {
      snapshotUse = applied ? "applied" : "skipped: OrtInit called with other settings";
    });
    return { instance: { exports }, module: compiled };
  };
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
