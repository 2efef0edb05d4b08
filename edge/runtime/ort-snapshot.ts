/**
 * A pre-initialised onnxruntime: the wasm memory as it stands after ORT's own initialisation
 * (`OrtInit`: the environment, every ONNX operator schema), taken once at build time
 * (scripts/ort-snapshot-build.ts) and written back into a fresh instance instead of running that
 * initialisation again. The same idea as Wizer's snapshots. It saves the isolate's cold start
 * the initialisation's work and, above all, V8's compiling of the hundreds of wasm functions
 * that run only there.
 *
 * Valid only for the binary it was taken from. The header names onnxruntime-web's version and a
 * fingerprint of the module's export list, and the arguments OrtInit was called with; on any
 * mismatch the snapshot is not used and ORT initialises itself as usual.
 *
 * File: "MTRKORT1", u32 header length, header JSON, u32 run count, then runs of
 * (u32 offset, u32 length, bytes): the memory pages that differ from a fresh instance's.
 */

const MAGIC = "MTRKORT1";

export interface SnapshotHeader {
  /** onnxruntime-web's version (`ort.env.versions.web`). */
  ortVersion: string;
  /** fingerprintExports of the wasm module. */
  exports: string;
  /** The minified export name of `OrtInit`. */
  ortInit: string;
  /** The arguments OrtInit ran with (threads, logging level): another call is not covered. */
  ortInitArgs: number[];
  /** Linear memory size in bytes after initialisation. */
  memoryBytes: number;
}

export interface OrtSnapshot {
  header: SnapshotHeader;
  runs: { offset: number; bytes: Uint8Array }[];
}

interface WasmModuleStatics {
  exports(module: object): { name: string; kind: string }[];
}

/** A cheap identity of a wasm binary: FNV-1a over its export names and kinds, in order. */
export function fingerprintExports(module: object): string {
  const wasm = (globalThis as unknown as { WebAssembly: { Module: WasmModuleStatics } }).WebAssembly;
  let h = 0x811c9dc5;
  const list = wasm.Module.exports(module);
  for (const { name, kind } of list)
    for (const ch of `${name}:${kind};`) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0;
  return `${list.length}:${h.toString(16)}`;
}

export function encodeSnapshot(header: SnapshotHeader, fresh: Uint8Array, after: Uint8Array): Uint8Array {
  const PAGE = 4096;
  const runs: { offset: number; bytes: Uint8Array }[] = [];
  for (let offset = 0; offset < after.length; offset += PAGE) {
    const page = after.subarray(offset, offset + PAGE);
    if (samePage(page, fresh, offset)) continue;
    const last = runs.at(-1);
    if (last && last.offset + last.bytes.length === offset)
      last.bytes = after.subarray(last.offset, offset + page.length);
    else runs.push({ offset, bytes: page });
  }
  const headerBytes = new TextEncoder().encode(JSON.stringify(header));
  const size = 8 + 4 + headerBytes.length + 4 + runs.reduce((s, r) => s + 8 + r.bytes.length, 0);
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  out.set(new TextEncoder().encode(MAGIC), 0);
  let p = 8;
  view.setUint32(p, headerBytes.length, true);
  out.set(headerBytes, p + 4);
  p += 4 + headerBytes.length;
  view.setUint32(p, runs.length, true);
  p += 4;
  for (const run of runs) {
    view.setUint32(p, run.offset, true);
    view.setUint32(p + 4, run.bytes.length, true);
    out.set(run.bytes, p + 8);
    p += 8 + run.bytes.length;
  }
  return out;
}

function samePage(page: Uint8Array, fresh: Uint8Array, offset: number): boolean {
  if (offset + page.length > fresh.length) return false;
  for (let i = 0; i < page.length; i++) if (page[i] !== fresh[offset + i]) return false;
  return true;
}

/** Reads a snapshot file; throws on a file that is not one (wrong magic, truncated). */
export function decodeSnapshot(data: ArrayBuffer | Uint8Array): OrtSnapshot {
  const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
  if (bytes.length < 16 || new TextDecoder().decode(bytes.subarray(0, 8)) !== MAGIC)
    throw new Error("ORT snapshot: not a snapshot file");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getUint32(8, true);
  const header = JSON.parse(
    new TextDecoder().decode(bytes.subarray(12, 12 + headerLength)),
  ) as SnapshotHeader;
  let p = 12 + headerLength;
  const count = view.getUint32(p, true);
  p += 4;
  const runs: OrtSnapshot["runs"] = [];
  for (let i = 0; i < count; i++) {
    const offset = view.getUint32(p, true);
    const length = view.getUint32(p + 4, true);
    if (p + 8 + length > bytes.length) throw new Error("ORT snapshot: truncated");
    runs.push({ offset, bytes: bytes.subarray(p + 8, p + 8 + length) });
    p += 8 + length;
  }
  return { header, runs };
}

/** Why `snapshot` cannot stand in for this module's initialisation, or undefined when it can. */
export function snapshotMismatch(
  snapshot: OrtSnapshot,
  module: object,
  ortVersion: string,
): string | undefined {
  const { header } = snapshot;
  if (header.ortVersion !== ortVersion)
    return `taken with onnxruntime-web ${header.ortVersion}, running ${ortVersion}`;
  if (header.exports !== fingerprintExports(module)) return "taken from another wasm binary";
  return undefined;
}

export interface WasmMemory {
  buffer: ArrayBuffer | SharedArrayBuffer;
  grow(pages: number): number;
}

/** The memory a module's import object provides (Emscripten's threaded builds import theirs). */
export function memoryImport(imports: unknown): WasmMemory | undefined {
  const wasm = (globalThis as unknown as { WebAssembly: { Memory: new (...args: never[]) => object } })
    .WebAssembly;
  for (const space of Object.values((imports ?? {}) as Record<string, Record<string, unknown> | null>))
    for (const value of Object.values(space ?? {}))
      if (value instanceof wasm.Memory) return value as WasmMemory;
  return undefined;
}

type Exports = Record<string, unknown>;

/**
 * The instance's exports with OrtInit replaced: called with the snapshot's arguments, it writes
 * the snapshot into memory (the state right after the real call) and reports success; with
 * other arguments it runs the real initialisation. `onApplied` hears which happened.
 */
export function initFromSnapshot(
  exports: Exports,
  memory: WasmMemory,
  snapshot: OrtSnapshot,
  onApplied: (applied: boolean) => void,
): Exports {
  const { header } = snapshot;
  const ortInit = exports[header.ortInit];
  if (typeof ortInit !== "function") return exports;
  return {
    ...exports,
    [header.ortInit]: (...args: number[]) => {
      const same =
        args.length === header.ortInitArgs.length && args.every((a, i) => a === header.ortInitArgs[i]);
      onApplied(same);
      if (!same) return (ortInit as (...a: number[]) => number)(...args);
      restore(memory, snapshot);
      return 0;
    },
  };
}

function restore(memory: WasmMemory, snapshot: OrtSnapshot): void {
  const WASM_PAGE = 65536;
  const missing = snapshot.header.memoryBytes - memory.buffer.byteLength;
  if (missing > 0) memory.grow(Math.ceil(missing / WASM_PAGE));
  const target = new Uint8Array(memory.buffer);
  for (const run of snapshot.runs) target.set(run.bytes, run.offset);
}
