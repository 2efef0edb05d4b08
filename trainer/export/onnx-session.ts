/** onnxruntime-web sessions in Node: what `predict` and export checks run, as the edge will. */
import * as ort from "onnxruntime-web";
import type { EncodedBatch } from "../../shared/encoder/encode.ts";
import type { ModelManifest } from "../../shared/manifest.ts";

ort.env.wasm.numThreads = 1;
ort.env.logLevel = "error";

export type Session = ort.InferenceSession;

export async function openSession(bytes: Uint8Array): Promise<Session> {
  return ort.InferenceSession.create(bytes);
}

/** Runs the graph on an encoded batch; returns each head's values by head name. */
export async function runHeads(
  session: Session,
  manifest: Pick<ModelManifest, "inputs" | "heads" | "features">,
  batch: EncodedBatch,
): Promise<Record<string, Float32Array>> {
  const feeds: Record<string, ort.Tensor> = {};
  const { denseSize, idSlots } = manifest.features;
  if (manifest.inputs.dense)
    feeds[manifest.inputs.dense] = new ort.Tensor("float32", batch.dense, [batch.rows, denseSize]);
  if (manifest.inputs.ids)
    feeds[manifest.inputs.ids] = new ort.Tensor("int32", batch.ids, [batch.rows, idSlots]);
  const results = await session.run(feeds);
  const out: Record<string, Float32Array> = {};
  for (const head of manifest.heads) out[head.name] = results[head.output]!.data as Float32Array;
  return out;
}
