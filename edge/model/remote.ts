/**
 * Reads a model directory from R2 and checks model.onnx against the manifest's `files` entry
 * (byte count and sha256) before anything runs it: a partial upload, a wrong prefix or a
 * tampered file is refused here.
 */
import type { ModelSource } from "./serving-model.ts";
import type { R2BucketReader } from "./store.ts";

export class ModelVerificationError extends Error {
  override name = "ModelVerificationError";
}

const MODEL_FILE = "model.onnx";

export async function fetchRemoteModel(bucket: R2BucketReader, prefix: string): Promise<ModelSource> {
  const dir = prefix.endsWith("/") ? prefix : `${prefix}/`;
  const manifestObject = await bucket.get(`${dir}manifest.json`);
  if (!manifestObject) throw new ModelVerificationError(`R2 has no ${dir}manifest.json`);
  let manifest: unknown;
  try {
    manifest = JSON.parse(await manifestObject.text());
  } catch (error) {
    throw new ModelVerificationError(`${dir}manifest.json is not JSON: ${String(error)}`);
  }
  const expected = expectedFile(manifest);
  if (!expected)
    throw new ModelVerificationError(`${dir}manifest.json: files["${MODEL_FILE}"].sha256 is missing`);

  const modelObject = await bucket.get(`${dir}${MODEL_FILE}`);
  if (!modelObject) throw new ModelVerificationError(`R2 has no ${dir}${MODEL_FILE}`);
  const model = await modelObject.arrayBuffer();
  if (expected.bytes !== undefined && model.byteLength !== expected.bytes)
    throw new ModelVerificationError(
      `${dir}${MODEL_FILE}: ${model.byteLength} bytes, manifest files["${MODEL_FILE}"].bytes says ${expected.bytes}`,
    );
  const actual = await sha256Hex(model);
  if (actual !== expected.sha256.toLowerCase())
    throw new ModelVerificationError(
      `${dir}${MODEL_FILE}: sha256 ${actual}, manifest files["${MODEL_FILE}"].sha256 says ${expected.sha256}`,
    );
  return { manifest, model };
}

function expectedFile(manifest: unknown): { sha256: string; bytes?: number } | undefined {
  const files = (manifest as { files?: Record<string, { sha256?: unknown; bytes?: unknown }> } | null)?.files;
  const entry = files?.[MODEL_FILE];
  if (typeof entry?.sha256 !== "string") return undefined;
  return { sha256: entry.sha256, ...(typeof entry.bytes === "number" ? { bytes: entry.bytes } : {}) };
}

export async function sha256Hex(bytes: ArrayBuffer): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}
