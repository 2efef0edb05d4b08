/**
 * The default cap on an .onnx file from R2 (DEFAULT_MODEL_MAX_BYTES, 12 MiB) is one the 128 MB
 * isolate can hold while onnxruntime copies the graph (edge/model/remote.ts says why): a graph
 * the manifest and R2 declare larger is refused before its body is read, and
 * MTRANK_MODEL_MAX_BYTES (the maxModelBytes option) still raises it.
 */
import { describe, expect, it } from "vitest";
import type { R2BucketReader } from "../../edge/env.ts";
import { DEFAULT_MODEL_MAX_BYTES, fetchRemoteModel } from "../../edge/model/remote.ts";

const MiB = 1024 * 1024;

/** A bucket holding a manifest that lists model.onnx at `bytes`, and a model.onnx R2 declares that size; counts body reads. */
function bucketWithGraphOf(bytes: number) {
  const reads = { graph: 0 };
  const manifest = JSON.stringify({ files: { "model.onnx": { sha256: "0".repeat(64), bytes } } });
  const bucket: R2BucketReader = {
    get: async (key) =>
      key.endsWith("manifest.json")
        ? { size: manifest.length, text: async () => manifest, arrayBuffer: async () => new ArrayBuffer(0) }
        : {
            size: bytes,
            text: async () => "",
            arrayBuffer: async () => {
              reads.graph += 1;
              return new ArrayBuffer(0);
            },
          },
  };
  return { bucket, reads };
}

describe("the default MTRANK_MODEL_MAX_BYTES", () => {
  it("is 12 MiB: a 13 MiB graph is refused unread, one at the cap is read", async () => {
    expect(DEFAULT_MODEL_MAX_BYTES).toBe(12 * MiB);
    const over = bucketWithGraphOf(13 * MiB);
    await expect(fetchRemoteModel(over.bucket, "models/big/")).rejects.toThrow(
      `models/big/model.onnx: manifest files["model.onnx"].bytes says ${13 * MiB}, over the ${12 * MiB}-byte cap`,
    );
    expect(over.reads.graph).toBe(0);
    // At the cap the body is read (and this one's bytes are then found short).
    const at = bucketWithGraphOf(12 * MiB);
    await expect(fetchRemoteModel(at.bucket, "models/at-cap/")).rejects.toThrow(/0 bytes read/);
    expect(at.reads.graph).toBe(1);
  });

  it("MTRANK_MODEL_MAX_BYTES raises it", async () => {
    const { bucket, reads } = bucketWithGraphOf(13 * MiB);
    await expect(fetchRemoteModel(bucket, "models/big/", { maxModelBytes: 16 * MiB })).rejects.toThrow(
      /0 bytes read, manifest files\["model\.onnx"\]\.bytes says 13631488/,
    );
    expect(reads.graph).toBe(1);
  });
});
