/**
 * onnxruntime-web inside workerd, as measured in docs/notes/ort-web-in-workerd.md: the wasm-only
 * build, its binary precompiled by wrangler, one thread, no proxy worker, and its
 * initialisation restored from the build-time snapshot (./ort-snapshot.ts; `npm run
 * build:ort-snapshot` writes it, and install runs that).
 */

import ortWasm from "onnxruntime-web/dist/ort-wasm-simd-threaded.wasm";
import * as ort from "onnxruntime-web/wasm";
import { describeError, logLine } from "../log.ts";
import ortSnapshot from "./generated/ort-snapshot.bin";
import { decodeSnapshot, type OrtSnapshot } from "./ort-snapshot.ts";
import { ortSnapshotUse, usePrecompiledWasm } from "./precompiled-wasm.ts";

export type Session = ort.InferenceSession;
export type RunResult = ort.InferenceSession.ReturnType;
export type { InferenceSession } from "onnxruntime-web/wasm";
export { Tensor } from "onnxruntime-web/wasm";
export { ortSnapshotUse } from "./precompiled-wasm.ts";

let configured = false;
let snapshotWanted = true;

/** false before the first session: ORT initialises itself (a baseline for bench:edge's cold start). */
export function useOrtSnapshot(enabled: boolean): void {
  snapshotWanted = enabled;
}

function configure(): void {
  if (configured) return;
  configured = true;
  usePrecompiledWasm(ortWasm, snapshotWanted ? bundledSnapshot() : undefined);
}

/** An unreadable snapshot costs only the start-up time it would have saved. */
function bundledSnapshot(): OrtSnapshot | undefined {
  try {
    return decodeSnapshot(ortSnapshot);
  } catch (error) {
    logLine("error", "ort.snapshot_unreadable", { error: describeError(error) });
    return undefined;
  }
}

/** Creates an inference session; the first call also starts the ORT runtime. */
export async function createSession(model: ArrayBuffer | Uint8Array): Promise<Session> {
  const first = !configured;
  configure();
  const bytes = model instanceof Uint8Array ? model : new Uint8Array(model);
  const session = await ort.InferenceSession.create(bytes, {
    executionProviders: ["wasm"],
    graphOptimizationLevel: "all",
  });
  const snapshot = ortSnapshotUse();
  if (first && snapshotWanted && snapshot !== "applied")
    logLine("warn", "ort.snapshot_unused", { reason: snapshot });
  return session;
}
