/** bench:edge's plain-JS forward pass computes what onnxruntime computes, cross layers included. */
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { compileEncoder } from "../../shared/encoder/encode.ts";
import { saveTrainedModel } from "../../trainer/artifact/trained-model.ts";
import { exportModelDir } from "../../trainer/export/export-model.ts";
import { factorisedLayout } from "../../trainer/export/factorised-layout.ts";
import { openSession, runHeads } from "../../trainer/export/onnx-session.ts";
import { selectBackend } from "../../trainer/train/backend.ts";
import { jsMmoe } from "../fixtures/js-mmoe.ts";
import { encodeBody, requestBody } from "../fixtures/request-body.ts";
import { type SyntheticFeature, syntheticModel } from "../fixtures/synthetic-model.ts";

const FEATURES: SyntheticFeature[] = [
  { name: "user", side: "user", ids: 40 },
  { name: "age", side: "user", buckets: 3 },
  { name: "item", side: "item", ids: 60 },
  { name: "price", side: "item" },
];

describe("bench:edge plain-JS MMoE", () => {
  it.each([
    "stacked",
    "parallel",
  ] as const)("matches onnxruntime with two %s cross layers (max |Δp| <= 1e-4)", async (crossLayout) => {
    await selectBackend("cpu");
    const model = await syntheticModel({
      arch: "mmoe",
      features: FEATURES,
      options: { experts: 3, expertSizes: [8], tower: [4], cross: 2, crossRank: 3, crossLayout },
      seed: 5,
    });
    // Fresh cross layers are the identity (U = 0) and fresh cross towers add nothing (zero
    // logit kernels): give those values so the layers do something.
    for (const [name, w] of Object.entries(model.weights))
      if (name.endsWith("/up/kernel") || /^cross_tower_.*\/logit\/kernel$/.test(name))
        w.values.set(w.values.map((_, i) => Math.sin(i + 1) * 0.3));
    const dir = await mkdtemp(join(tmpdir(), "mtrank-edge-forward-"));
    await saveTrainedModel(dir, model);
    const { manifest, onnxBytes } = await exportModelDir(dir);
    const batch = encodeBody(compileEncoder(model.encoder), requestBody(model.encoder, 30, 7));
    const expected = await runHeads(await openSession(onnxBytes), manifest, batch);
    const js = jsMmoe(model);
    const user = factorisedLayout(model.encoder).user;
    // Stacked cross layers have no factorised form; parallel ones leave the first layers split.
    const runs = crossLayout === "stacked" ? [js.run(batch)] : [js.run(batch), js.run(batch, { user })];
    let spread = 0;
    for (const got of runs)
      for (const head of model.config.heads) {
        const a = expected[head.name]!;
        const b = got[head.name]!;
        for (let i = 0; i < a.length; i++) expect(Math.abs(a[i]! - b[i]!)).toBeLessThanOrEqual(1e-4);
        spread = Math.max(spread, Math.max(...b) - Math.min(...b));
      }
    expect(spread).toBeGreaterThan(1e-3);
    if (crossLayout === "stacked") expect(() => js.run(batch, { user })).toThrow(/stacked cross layers/);
  });
});
