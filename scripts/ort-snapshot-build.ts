/**
 * npm run build:ort-snapshot (also run on install): writes edge/runtime/generated/ort-snapshot.bin,
 * onnxruntime-web's wasm memory after OrtInit as the worker calls it (one thread, logging
 * "error"), for ./ort-snapshot.ts. Node, the worker's own recipe: the same binary, compiled
 * beforehand, instantiated through ./precompiled-wasm.ts's swap.
 *
 *   tsx scripts/ort-snapshot-build.ts [--out FILE]
 */
import { mkdir, readFile } from "node:fs/promises";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import * as ort from "onnxruntime-web/wasm";
import {
  decodeSnapshot,
  encodeSnapshot,
  fingerprintExports,
  memoryImport,
  type OrtSnapshot,
} from "../edge/runtime/ort-snapshot.ts";
import { usePrecompiledWasm } from "../edge/runtime/precompiled-wasm.ts";
import { writeAtomic } from "../trainer/core/write-atomic.ts";

export const SNAPSHOT_FILE = "edge/runtime/generated/ort-snapshot.bin";
const WASM_FILE = "node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.wasm";

interface WasmApi {
  compile(bytes: Uint8Array): Promise<object>;
  instantiate(source: unknown, imports?: unknown): Promise<{ exports: Record<string, unknown> }>;
}

// The lib has no WebAssembly value types here (no DOM lib); Node provides the global.
const wasmApi = () => (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

/** The worker's onnxruntime binary compiled in Node, as wrangler compiles it for the worker. */
export async function compileOrtWasm(): Promise<object> {
  return wasmApi().compile(new Uint8Array(await readFile(WASM_FILE)));
}

/** A snapshot file read and decoded (default: the one install writes). */
export async function readOrtSnapshot(path = SNAPSHOT_FILE): Promise<OrtSnapshot> {
  return decodeSnapshot(new Uint8Array(await readFile(path)));
}

/** The minified export name the glue binds `_OrtInit` to, read from the loader the worker imports. */
async function ortInitExport(): Promise<string> {
  const loader = fileURLToPath(import.meta.resolve("onnxruntime-web/wasm"));
  const match = /_OrtInit=[\w$]+\.([\w$]+)[;,]/.exec(await readFile(loader, "utf8"));
  if (!match) throw new Error(`build:ort-snapshot: cannot find _OrtInit's export in ${loader}`);
  return match[1]!;
}

export async function buildOrtSnapshot(out = SNAPSHOT_FILE): Promise<{ bytes: number }> {
  const wasm = wasmApi();
  const compiled = await compileOrtWasm();
  const ortInit = await ortInitExport();
  let snapshot: Uint8Array | undefined;
  const instantiate = wasm.instantiate.bind(wasm);
  // Wrapping the marker swap: the instance ORT gets has OrtInit recording memory around its call.
  wasm.instantiate = async (source, imports) => {
    const instance = await instantiate(source, imports);
    const init = "exports" in instance ? instance.exports[ortInit] : undefined;
    if (typeof init !== "function") return instance;
    const memory = memoryImport(imports);
    if (!memory) throw new Error("build:ort-snapshot: the wasm module imports no memory");
    const exports = {
      ...instance.exports,
      [ortInit]: (...args: number[]) => {
        const before = new Uint8Array(memory.buffer).slice();
        const status = (init as (...a: number[]) => number)(...args);
        if (status !== 0) throw new Error(`build:ort-snapshot: OrtInit failed with ${status}`);
        const after = new Uint8Array(memory.buffer);
        const header = {
          ortVersion: ort.env.versions.web ?? "",
          exports: fingerprintExports(compiled),
          ortInit,
          ortInitArgs: args,
          memoryBytes: after.length,
        };
        snapshot = encodeSnapshot(header, before, after);
        return status;
      },
    };
    return { exports } as typeof instance;
  };
  usePrecompiledWasm(compiled);
  const tiny = await ort.InferenceSession.create(new Uint8Array(await readFile("fixtures/model/model.onnx")));
  await tiny.release();
  wasm.instantiate = instantiate;
  if (!snapshot) throw new Error("build:ort-snapshot: onnxruntime never called OrtInit");
  await mkdir(dirname(out), { recursive: true });
  await writeAtomic(out, snapshot); // a cut-off file would only be skipped, but never leave one
  return { bytes: snapshot.length };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const at = process.argv.indexOf("--out");
  const out = at > 0 ? process.argv[at + 1] : SNAPSHOT_FILE;
  try {
    const { bytes } = await buildOrtSnapshot(out);
    console.log(`build:ort-snapshot: wrote ${out} (${(bytes / 1024).toFixed(0)} KiB)`);
  } catch (error) {
    console.error((error as Error).message);
    process.exit(1);
  }
}
