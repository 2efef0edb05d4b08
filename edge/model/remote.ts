/**
 * Reads a model directory from R2 and checks model.onnx (and the factorised graph the manifest
 * names, if any) against the manifest's `files` entries (byte count and sha256) before anything runs it: a partial upload, a wrong prefix or a
 * tampered file is refused here.
 */
import type { ModelSource } from "./serving-model.ts";
import type { R2BucketReader } from "./store.ts";

export class ModelVerificationError extends Error {
  override name = "ModelVerificationError";
}

/** Which weights to serve from a model directory: model.onnx or model.int8.onnx (MTRANK_MODEL_WEIGHTS). */
export type ServedWeights = "float32" | "int8";

const MODEL_FILES: Record<ServedWeights, string> = { float32: "model.onnx", int8: "model.int8.onnx" };

export async function fetchRemoteModel(
  bucket: R2BucketReader,
  prefix: string,
  weights: ServedWeights = "float32",
): Promise<ModelSource> {
  const dir = prefix.endsWith("/") ? prefix : `${prefix}/`;
  const manifestObject = await bucket.get(`${dir}manifest.json`);
  if (!manifestObject) throw new ModelVerificationError(`R2 has no ${dir}manifest.json`);
  let manifest: unknown;
  try {
    manifest = JSON.parse(await manifestObject.text());
  } catch (error) {
    throw new ModelVerificationError(`${dir}manifest.json is not JSON: ${String(error)}`);
  }
  const model = await verifiedFile(bucket, dir, manifest, MODEL_FILES[weights]);
  // The factorised graph, when the manifest has one, is verified the same way: a model
  // directory is served whole or not at all.
  const factorised = (manifest as { factorised?: { file?: unknown; int8File?: unknown } } | null)?.factorised;
  const factorisedFile = weights === "int8" ? factorised?.int8File : factorised?.file;
  if (typeof factorisedFile !== "string") return { manifest, model };
  return { manifest, model, factorised: await verifiedFile(bucket, dir, manifest, factorisedFile) };
}

async function verifiedFile(
  bucket: R2BucketReader,
  dir: string,
  manifest: unknown,
  file: string,
): Promise<ArrayBuffer> {
  const expected = expectedFile(manifest, file);
  if (!expected) throw new ModelVerificationError(`${dir}manifest.json: files["${file}"].sha256 is missing`);
  const object = await bucket.get(`${dir}${file}`);
  if (!object) throw new ModelVerificationError(`R2 has no ${dir}${file}`);
  const bytes = await object.arrayBuffer();
  if (expected.bytes !== undefined && bytes.byteLength !== expected.bytes)
    throw new ModelVerificationError(
      `${dir}${file}: ${bytes.byteLength} bytes, manifest files["${file}"].bytes says ${expected.bytes}`,
    );
  const actual = await sha256Hex(bytes);
  if (actual !== expected.sha256.toLowerCase())
    throw new ModelVerificationError(
      `${dir}${file}: sha256 ${actual}, manifest files["${file}"].sha256 says ${expected.sha256}`,
    );
  return bytes;
}

function expectedFile(manifest: unknown, file: string): { sha256: string; bytes?: number } | undefined {
  const files = (manifest as { files?: Record<string, { sha256?: unknown; bytes?: unknown }> } | null)?.files;
  const entry = files?.[file];
  if (typeof entry?.sha256 !== "string") return undefined;
  return { sha256: entry.sha256, ...(typeof entry.bytes === "number" ? { bytes: entry.bytes } : {}) };
}

export async function sha256Hex(bytes: ArrayBuffer): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}
