/** The factorised graph against the plain one on the same requests: what the factorised tests assert on. */
import { expect } from "vitest";
import type { EncodedBatch } from "../../shared/encoder/encode.ts";
import type { TrainedModel } from "../../trainer/artifact/trained-model.ts";
import { maxAbsDiff } from "../../trainer/core/metrics.ts";
import { buildFactorisedOnnx, buildOnnx } from "../../trainer/export/export-model.ts";
import { factorisedLayout } from "../../trainer/export/factorised-layout.ts";
import { openSession, runFactorisedHeads, runHeads } from "../../trainer/export/onnx-session.ts";

/**
 * Max |Δ| between the plain and factorised graphs' head outputs over `batches`, and the widest
 * spread of the plain outputs (equality means little if every candidate scores the same).
 */
export async function compareFactorised(
  model: TrainedModel,
  weights: "float32" | "int8",
  batches: readonly EncodedBatch[],
): Promise<{ diff: number; spread: number }> {
  const { bytes, manifest } = buildOnnx(model, weights);
  const layout = factorisedLayout(model.encoder);
  const f = buildFactorisedOnnx(model, layout, weights);
  const plain = await openSession(bytes);
  const factorised = await openSession(f.bytes);
  const info = { file: "f.onnx", inputs: f.inputs, ...layout };
  let diff = 0;
  let spread = 0;
  for (const batch of batches) {
    const a = await runHeads(plain, manifest, batch);
    const b = await runFactorisedHeads(factorised, { ...manifest, factorised: info }, batch);
    for (const head of manifest.heads) {
      expect(b[head.name]!.length).toBe(batch.rows);
      diff = Math.max(diff, maxAbsDiff(a[head.name]!, b[head.name]!));
      spread = Math.max(spread, Math.max(...a[head.name]!) - Math.min(...a[head.name]!));
    }
  }
  return { diff, spread };
}
