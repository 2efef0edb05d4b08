/** onnxruntime-web sessions in Node: what `predict` and export checks run, as the edge will. */
import { createHash } from "node:crypto";
import * as ort from "onnxruntime-web";
import type { EncodedBatch } from "../../shared/encoder/encode.ts";
import type { FactorisedInfo, FileInfo, ModelManifest } from "../../shared/manifest.ts";
import { sliceBatch } from "./factorised-layout.ts";

ort.env.wasm.numThreads = 1;
ort.env.logLevel = "error";

export type Session = ort.InferenceSession;

export async function openSession(bytes: Uint8Array): Promise<Session> {
  return ort.InferenceSession.create(bytes);
}

/**
 * Opens a model file only if it is the one the manifest lists: byte count, then sha256, then
 * onnxruntime's own parse. A truncated or corrupt file fails here with a message naming the file
 * (`label`) and what is wrong, not later with a protobuf error from inside the runtime.
 */
export async function openVerifiedSession(
  bytes: Uint8Array,
  expected: FileInfo,
  label: string,
): Promise<Session> {
  if (bytes.length !== expected.bytes)
    throw new Error(
      `${label}: ${bytes.length} bytes where the manifest lists ${expected.bytes} (truncated or replaced file)`,
    );
  const sha256 = createHash("sha256").update(bytes).digest("hex");
  if (sha256 !== expected.sha256)
    throw new Error(
      `${label}: sha256 ${sha256.slice(0, 16)}… does not match the manifest's ${expected.sha256.slice(0, 16)}… (corrupt or replaced file)`,
    );
  try {
    return await openSession(bytes);
  } catch (error) {
    throw new Error(`${label}: onnxruntime cannot load the graph: ${firstLine(error)}`);
  }
}

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split("\n")[0]!;
}

/**
 * A tensor class (onnxruntime-web's by default; the benchmarks also pass onnxruntime-node's).
 * ort's own constructor type is a set of overloads per element type, hence the casts below.
 */
export type TensorClass<T> = new (
  type: "float32" | "int32",
  data: Float32Array | Int32Array,
  dims: number[],
) => T;

/** The plain graph's inputs for an encoded batch. */
export function plainFeeds<T = ort.Tensor>(
  manifest: Pick<ModelManifest, "inputs" | "features">,
  batch: EncodedBatch,
  Tensor: TensorClass<T> = ort.Tensor as unknown as TensorClass<T>,
): Record<string, T> {
  const feeds: Record<string, T> = {};
  const { denseSize, idSlots } = manifest.features;
  if (manifest.inputs.dense)
    feeds[manifest.inputs.dense] = new Tensor("float32", batch.dense, [batch.rows, denseSize]);
  if (manifest.inputs.ids) feeds[manifest.inputs.ids] = new Tensor("int32", batch.ids, [batch.rows, idSlots]);
  return feeds;
}

/**
 * A factorised graph's inputs for one request's encoded batch (every row holding the same user
 * and context features, as `encodeRequest` writes them): user inputs from row 0, item inputs
 * from every row.
 */
export function factorisedFeeds<T = ort.Tensor>(
  manifest: Pick<ModelManifest, "features"> & {
    factorised: Pick<FactorisedInfo, "inputs" | "user" | "item">;
  },
  batch: EncodedBatch,
  Tensor: TensorClass<T> = ort.Tensor as unknown as TensorClass<T>,
): Record<string, T> {
  const { inputs, user, item } = manifest.factorised;
  const u = sliceBatch(batch, manifest.features, user, { start: 0, count: 1 });
  const it = sliceBatch(batch, manifest.features, item, { start: 0, count: batch.rows });
  const feeds: Record<string, T> = {};
  if (inputs.userDense) feeds[inputs.userDense] = new Tensor("float32", u.dense, [1, user.dense.length]);
  if (inputs.userIds) feeds[inputs.userIds] = new Tensor("int32", u.ids, [1, user.ids.length]);
  if (inputs.itemDense)
    feeds[inputs.itemDense] = new Tensor("float32", it.dense, [batch.rows, item.dense.length]);
  if (inputs.itemIds) feeds[inputs.itemIds] = new Tensor("int32", it.ids, [batch.rows, item.ids.length]);
  return feeds;
}

/** Runs the graph on an encoded batch; returns each head's values by head name. */
export async function runHeads(
  session: Session,
  manifest: Pick<ModelManifest, "inputs" | "heads" | "features">,
  batch: EncodedBatch,
): Promise<Record<string, Float32Array>> {
  const results = await session.run(plainFeeds(manifest, batch));
  const out: Record<string, Float32Array> = {};
  for (const head of manifest.heads) out[head.name] = results[head.output]!.data as Float32Array;
  return out;
}

/** Runs a factorised graph on one request's encoded batch (factorisedFeeds); values by head name. */
export async function runFactorisedHeads(
  session: Session,
  manifest: Pick<ModelManifest, "heads" | "features"> & { factorised: FactorisedInfo },
  batch: EncodedBatch,
): Promise<Record<string, Float32Array>> {
  const results = await session.run(factorisedFeeds(manifest, batch));
  const out: Record<string, Float32Array> = {};
  for (const head of manifest.heads) out[head.name] = results[head.output]!.data as Float32Array;
  return out;
}
