/**
 * The onnxruntime snapshot (edge/runtime/ort-snapshot.ts): the file format, when it may stand in
 * for OrtInit, and, in fresh processes, that a runtime started from it scores exactly as one
 * that initialised itself.
 */
import { spawnSync } from "node:child_process";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import * as ort from "onnxruntime-web/wasm";
import { describe, expect, it } from "vitest";
import {
  decodeSnapshot,
  encodeSnapshot,
  fingerprintExports,
  initFromSnapshot,
  type SnapshotHeader,
  snapshotMismatch,
  type WasmMemory,
} from "../../edge/runtime/ort-snapshot.ts";

const WASM = (globalThis as unknown as { WebAssembly: { Module: new (bytes: Uint8Array) => object } })
  .WebAssembly;
/** The smallest module exporting one function `f` (its fingerprint differs from ORT's). */
const TINY = new WASM.Module(
  new Uint8Array([
    0, 97, 115, 109, 1, 0, 0, 0, 1, 4, 1, 96, 0, 0, 3, 2, 1, 0, 7, 5, 1, 1, 102, 0, 0, 10, 4, 1, 2, 0, 11,
  ]),
);

const header = (over: Partial<SnapshotHeader> = {}): SnapshotHeader => ({
  ortVersion: "1.30.0",
  exports: fingerprintExports(TINY),
  ortInit: "init",
  ortInitArgs: [1, 3],
  memoryBytes: 3 * 4096,
  ...over,
});

function memory(bytes: number): WasmMemory & { grown: number } {
  let buffer = new ArrayBuffer(bytes);
  const m = {
    grown: 0,
    get buffer() {
      return buffer;
    },
    grow(pages: number) {
      m.grown += pages;
      const next = new ArrayBuffer(buffer.byteLength + pages * 65536);
      new Uint8Array(next).set(new Uint8Array(buffer));
      buffer = next;
      return 0;
    },
  };
  return m;
}

describe("ORT snapshot file", () => {
  it("keeps only the pages that changed, merged into runs, and reads back", () => {
    const fresh = new Uint8Array(5 * 4096);
    const after = fresh.slice();
    after[10] = 1; // page 0
    after[4096 + 5] = 2; // page 1, adjacent: same run
    after[4 * 4096 + 7] = 3; // page 4
    const snapshot = decodeSnapshot(encodeSnapshot(header({ memoryBytes: after.length }), fresh, after));
    expect(snapshot.header.ortInitArgs).toEqual([1, 3]);
    expect(snapshot.runs.map((r) => [r.offset, r.bytes.length])).toEqual([
      [0, 2 * 4096],
      [4 * 4096, 4096],
    ]);
    expect(snapshot.runs[1]!.bytes[7]).toBe(3);
  });

  it("rejects a file that is not a snapshot or is cut short", () => {
    expect(() => decodeSnapshot(new TextEncoder().encode("not a snapshot at all"))).toThrow(/not a snapshot/);
    const fresh = new Uint8Array(4096);
    const after = fresh.slice();
    after[0] = 9;
    const whole = encodeSnapshot(header(), fresh, after);
    expect(() => decodeSnapshot(whole.subarray(0, whole.length - 100))).toThrow(/truncated/);
  });

  it("stands in only for the binary and version it was taken from", () => {
    const snapshot = { header: header(), runs: [] };
    expect(snapshotMismatch(snapshot, TINY, "1.30.0")).toBeUndefined();
    expect(snapshotMismatch(snapshot, TINY, "1.31.0")).toMatch(/taken with onnxruntime-web 1.30.0/);
    expect(snapshotMismatch({ header: header({ exports: "1:0" }), runs: [] }, TINY, "1.30.0")).toMatch(
      /another wasm binary/,
    );
  });

  it("replaces OrtInit called with the recorded arguments; other arguments run the real one", () => {
    const runs = [{ offset: 2 * 4096, bytes: new Uint8Array([7, 8, 9]) }];
    const mem = memory(4096);
    const calls: number[][] = [];
    const heard: boolean[] = [];
    const exports = initFromSnapshot(
      {
        init: (...args: number[]) => {
          calls.push(args);
          return 5;
        },
        other: 1,
      },
      mem,
      { header: header(), runs },
      (applied) => heard.push(applied),
    );
    const init = exports.init as (...a: number[]) => number;
    expect(init(1, 3)).toBe(0);
    expect(calls).toEqual([]);
    expect(mem.grown).toBe(1); // memoryBytes 12 KiB > 4 KiB: one wasm page
    expect(Array.from(new Uint8Array(mem.buffer, 2 * 4096, 3))).toEqual([7, 8, 9]);
    expect(init(2, 3)).toBe(5);
    expect(calls).toEqual([[2, 3]]);
    expect(heard).toEqual([true, false]);
    expect(exports.other).toBe(1);
  });
});

describe("ORT started from a snapshot (fresh processes)", () => {
  const tsx = (args: string[]) => {
    const run = spawnSync("node_modules/.bin/tsx", args, { encoding: "utf8", timeout: 120_000 });
    if (run.status !== 0) throw new Error(`tsx ${args.join(" ")} failed: ${run.stderr}`);
    return run.stdout;
  };

  it("scores the fixture model exactly as a runtime that initialised itself", async () => {
    const file = join(await mkdtemp(join(tmpdir(), "mtrank-snapshot-")), "ort-snapshot.bin");
    expect(tsx(["scripts/ort-snapshot-build.ts", "--out", file])).toMatch(/wrote/);
    const last = (out: string) =>
      JSON.parse(out.trim().split("\n").at(-1)!) as { use: string; outputs: Record<string, number[]> };
    const restored = last(tsx(["test/tools/ort-snapshot-run.ts", file]));
    const own = last(tsx(["test/tools/ort-snapshot-run.ts", "none"]));
    expect(restored.use).toBe("applied");
    expect(own.use).toBe("none");
    expect(Object.keys(restored.outputs).sort()).toEqual(["click", "purchase"]);
    expect(restored.outputs).toEqual(own.outputs);

    // A snapshot of another onnxruntime-web version is skipped, and ORT initialises itself.
    const bytes = new Uint8Array(await readFile(file));
    const text = new TextDecoder("latin1").decode(bytes);
    const at = text.indexOf(`"ortVersion":"${ort.env.versions.web}"`);
    expect(at).toBeGreaterThan(0);
    const stale = join(dirname(file), "stale.bin");
    const other = new TextEncoder().encode(`"ortVersion":"${"9".repeat(ort.env.versions.web!.length)}"`);
    bytes.set(other, at);
    await writeFile(stale, bytes);
    const skipped = last(tsx(["test/tools/ort-snapshot-run.ts", stale]));
    expect(skipped.use).toMatch(/^skipped: taken with onnxruntime-web 9+, running /);
    expect(skipped.outputs).toEqual(own.outputs);
  }, 240_000);
});
