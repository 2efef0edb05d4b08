/**
 * Reads a model directory from R2 and checks model.onnx (and the factorised graph the manifest
 * names, if any) against the manifest's `files` entries (byte count and sha256) before anything
 * runs it: a partial upload, a wrong prefix or a tampered file is refused here. Each object's
 * declared size is checked against a cap before its body is read: a Worker has 128 MB of memory,
 * and a wrong prefix pointing at a huge object must fail cleanly rather than take the isolate down.
 */

import type { R2BucketReader, R2ObjectBody } from "../env.ts";
import { containersAtMost } from "../json-containers.ts";
import type { ModelSource } from "./serving-model.ts";
import type { ServedWeights } from "./store.ts";

export class ModelVerificationError extends Error {
  override name = "ModelVerificationError";
}

/**
 * Default cap on manifest.json (MTRANK_MANIFEST_MAX_BYTES). The manifest carries every id
 * feature's vocabulary with its training count and per-task rates, about 30–35 bytes an entry: a
 * catalog of 200,000 items with 50,000 users writes 7.8 MB, and the isolate serving it holds
 * 31.5 MiB, 62 MiB at most while swapping to another such model. A swap to a 19.4 MB manifest
 * (580,000 entries) peaked at 108 MiB of the isolate's 128 (docs/benchmarks.md): the default
 * stays where a swap has room to spare.
 */
export const DEFAULT_MANIFEST_MAX_BYTES = 8 * 1024 * 1024;
/**
 * Objects and arrays a manifest.json may open before it is parsed. The byte cap does not bound
 * the heap: JSON.parse of 8 MiB of `{},{},…` takes ~180 MiB, past the isolate's 128 MB, while the
 * model serving is still held. A real manifest opens a few containers per feature and head (a
 * vocabulary of any length is one array of strings, its counts and rates one array each), so a
 * few hundred to a few thousand; 100,000 objects parse into a few MiB.
 */
export const MAX_MANIFEST_CONTAINERS = 100_000;
/** A real manifest nests 6 deep; far deeper only makes JSON.stringify (GET /v1/models) overflow. */
export const MAX_MANIFEST_DEPTH = 64;
/**
 * Default cap on each .onnx file (MTRANK_MODEL_MAX_BYTES). A graph costs the isolate far more
 * than its bytes: while it loads, the downloaded ArrayBuffer is held in JS, and onnxruntime-web's
 * wasm memory, which never shrinks, grows by 2.6× the graph (an embedding-table graph) to 3.6×
 * (dense kernels, which it prepacks) on the first load, then by 1× for each further graph loaded
 * beside it, as during a swap (measured with onnxruntime-web 1.30 on graphs of 4–16 MiB). From
 * the 16 MiB of wasm memory a worker starts with (docs/benchmarks.md), a 64 MiB graph would need
 * 180–250 MiB of the isolate's 128 MB on its own. At 12 MiB, a swap between two dense graphs at
 * the cap peaks at about 90 MiB (wasm 70 + the download 12 + the JS heap), with room for the
 * manifest; between two embedding graphs, at about 78 MiB. Exported graphs are far smaller: the float32 graph of
 * a model whose manifest fits its own default cap (250,000 vocabulary entries, embedding width 8)
 * is about 7 MB, its int8 graph about 2 MB.
 */
export const DEFAULT_MODEL_MAX_BYTES = 12 * 1024 * 1024;

export interface RemoteOptions {
  /** Default float32. */
  weights?: ServedWeights;
  /** Largest .onnx file accepted, in bytes (default DEFAULT_MODEL_MAX_BYTES). */
  maxModelBytes?: number;
  /** Largest manifest.json accepted, in bytes (default DEFAULT_MANIFEST_MAX_BYTES). */
  maxManifestBytes?: number;
  /**
   * Aborted when the load is given up (its deadline): the fetch stops at its next step, and an
   * object that arrives after it is cancelled unread.
   */
  signal?: AbortSignal;
}

/** The graph each MTRANK_MODEL_WEIGHTS serves. */
export const MODEL_FILES: Record<ServedWeights, string> = { float32: "model.onnx", int8: "model.int8.onnx" };

export async function fetchRemoteModel(
  bucket: R2BucketReader,
  prefix: string,
  options: RemoteOptions = {},
): Promise<ModelSource> {
  const {
    weights = "float32",
    maxModelBytes = DEFAULT_MODEL_MAX_BYTES,
    maxManifestBytes = DEFAULT_MANIFEST_MAX_BYTES,
    signal,
  } = options;
  const dir = prefix.endsWith("/") ? prefix : `${prefix}/`;
  const manifestObject = await cappedObject(bucket, `${dir}manifest.json`, maxManifestBytes, signal);
  const text = await manifestObject.text();
  if (!containersAtMost(text, MAX_MANIFEST_CONTAINERS, MAX_MANIFEST_DEPTH))
    throw new ModelVerificationError(
      containersAtMost(text, MAX_MANIFEST_CONTAINERS, Number.POSITIVE_INFINITY)
        ? `${dir}manifest.json nests objects and arrays more than ${MAX_MANIFEST_DEPTH} deep: not parsed`
        : `${dir}manifest.json opens more than ${MAX_MANIFEST_CONTAINERS} objects and arrays: not parsed`,
    );
  let manifest: unknown;
  try {
    manifest = JSON.parse(text);
  } catch (error) {
    throw new ModelVerificationError(`${dir}manifest.json is not JSON: ${String(error)}`);
  }
  const fetchFile = (file: string) => verifiedFile(bucket, dir, manifest, file, maxModelBytes, signal);
  const modelFile = MODEL_FILES[weights];
  const model = await fetchFile(modelFile);
  // The factorised graph, when the manifest has one, is verified the same way: a model
  // directory is served whole or not at all.
  const factorised = (manifest as { factorised?: { file?: unknown; int8File?: unknown } } | null)?.factorised;
  const factorisedFile = weights === "int8" ? factorised?.int8File : factorised?.file;
  if (typeof factorisedFile !== "string") return { manifest, model, modelFile };
  return { manifest, model, modelFile, factorised: await fetchFile(factorisedFile), factorisedFile };
}

/** The object at `key`, refused when absent or when R2 declares it larger than `cap`. */
async function cappedObject(
  bucket: R2BucketReader,
  key: string,
  cap: number,
  signal: AbortSignal | undefined,
): Promise<R2ObjectBody> {
  signal?.throwIfAborted();
  const object = await bucket.get(key);
  if (!object) throw new ModelVerificationError(`R2 has no ${key}`);
  if (signal?.aborted) {
    await object.body?.cancel().catch(() => undefined);
    signal.throwIfAborted();
  }
  if (!(object.size <= cap)) {
    await object.body?.cancel().catch(() => undefined);
    throw new ModelVerificationError(`${key}: ${object.size} bytes, over the ${cap}-byte cap`);
  }
  return object;
}

async function verifiedFile(
  bucket: R2BucketReader,
  dir: string,
  manifest: unknown,
  file: string,
  cap: number,
  signal: AbortSignal | undefined,
): Promise<ArrayBuffer> {
  const expected = expectedFile(manifest, dir, file);
  if (expected.bytes > cap)
    throw new ModelVerificationError(
      `${dir}${file}: manifest files["${file}"].bytes says ${expected.bytes}, over the ${cap}-byte cap`,
    );
  const object = await cappedObject(bucket, `${dir}${file}`, cap, signal);
  // A size that differs from the manifest's (an upload still in progress, or the wrong file) is
  // refused before the body is read.
  if (object.size !== expected.bytes) {
    await object.body?.cancel().catch(() => undefined);
    throw new ModelVerificationError(
      `${dir}${file}: ${object.size} bytes, manifest files["${file}"].bytes says ${expected.bytes}`,
    );
  }
  const bytes = await object.arrayBuffer();
  signal?.throwIfAborted();
  if (bytes.byteLength !== expected.bytes)
    throw new ModelVerificationError(
      `${dir}${file}: ${bytes.byteLength} bytes read, manifest files["${file}"].bytes says ${expected.bytes}`,
    );
  const actual = await sha256Hex(bytes);
  if (actual !== expected.sha256.toLowerCase())
    throw new ModelVerificationError(
      `${dir}${file}: sha256 ${actual}, manifest files["${file}"].sha256 says ${expected.sha256}`,
    );
  return bytes;
}

/** The manifest's sha256 and byte count for `file`: both are required, the exporter writes both. */
function expectedFile(manifest: unknown, dir: string, file: string): { sha256: string; bytes: number } {
  const files = (manifest as { files?: Record<string, { sha256?: unknown; bytes?: unknown }> } | null)?.files;
  const entry = files?.[file];
  const field = `${dir}manifest.json: files["${file}"]`;
  if (typeof entry?.sha256 !== "string") throw new ModelVerificationError(`${field}.sha256 is missing`);
  const bytes = entry.bytes;
  if (typeof bytes !== "number" || !Number.isInteger(bytes) || bytes < 0)
    throw new ModelVerificationError(`${field}.bytes must be a byte count, got ${JSON.stringify(bytes)}`);
  return { sha256: entry.sha256, bytes };
}

export async function sha256Hex(bytes: ArrayBuffer): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}
