/** Head outputs of an encoded batch from the exported graph, in chunks so memory stays bounded. */
import type { EncodedBatch } from "../../shared/encoder/encode.ts";
import { runHeads } from "../export/onnx-session.ts";
import type { ServedModel } from "../predict/served-model.ts";
import type { Predictor } from "./importance.ts";

export function onnxPredictor(model: ServedModel, chunk = 4096): Predictor {
  const { denseSize, idSlots } = model.manifest.features;
  return async (batch: EncodedBatch) => {
    const out: Record<string, Float32Array> = Object.fromEntries(
      model.manifest.heads.map((h) => [h.name, new Float32Array(batch.rows)]),
    );
    for (let start = 0; start < batch.rows; start += chunk) {
      const end = Math.min(batch.rows, start + chunk);
      const part: EncodedBatch = {
        rows: end - start,
        dense: batch.dense.subarray(start * denseSize, end * denseSize),
        ids: batch.ids.subarray(start * idSlots, end * idSlots),
      };
      const heads = await runHeads(model.session, model.manifest, part);
      for (const h of model.manifest.heads) out[h.name]!.set(heads[h.name]!, start);
    }
    return out;
  };
}
