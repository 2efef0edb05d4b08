/**
 * What a model keeps once loaded: the manifest without its vocabularies, training counts and
 * target rates (edge/model/manifest.ts servedManifest), which the compiled encoder holds in its
 * own compact form; the manifest it was given is left as it was, and requests encode to the
 * same bits as with the full state. Fixture: fixtures/model-features/ (id features with
 * frequency and target columns, bags, a factorised graph).
 */
import { describe, expect, it } from "vitest";
import { servedManifest } from "../../edge/model/manifest.ts";
import { type ModelSource, servingModel } from "../../edge/model/serving-model.ts";
import manifestJson from "../../fixtures/model-features/manifest.json";
import factorisedBytes from "../../fixtures/model-features/model.factorised.onnx";
import plainBytes from "../../fixtures/model-features/model.onnx";
import requestsJson from "../../fixtures/model-features/requests.json";
import { compileEncoder, type EncodedBatch, type FeatureValues } from "../../shared/encoder/encode.ts";
import type { ModelManifest } from "../../shared/manifest.ts";

const manifest = manifestJson as unknown as ModelManifest;
const { factorised: _section, ...plainManifest } = manifest;
const requests = requestsJson as unknown as {
  body: {
    user: { features: FeatureValues };
    context?: { features: FeatureValues };
    candidates: { features: FeatureValues }[];
  };
}[];

/** A batch as bits: -0 and 0, or two NaNs, are told apart. */
const bits = (batch: EncodedBatch) => ({
  rows: batch.rows,
  dense: Array.from(new Uint32Array(batch.dense.buffer, batch.dense.byteOffset, batch.dense.length)),
  ids: Array.from(batch.ids),
});

const sources: [string, ModelSource][] = [
  ["plain", { manifest: plainManifest, model: plainBytes }],
  ["factorised", { manifest, model: plainBytes, factorised: factorisedBytes }],
];

describe.each(sources)("a loaded model (%s graph)", (graph, source) => {
  it("keeps no vocabulary, count or rate of its manifest, and leaves the one it was given as it was", async () => {
    expect(JSON.stringify(source.manifest)).toMatch(/"counts"/);
    const given = structuredClone(source.manifest);
    const model = servingModel(source);
    const loaded = await model.load();
    expect(loaded.graph).toBe(graph);
    expect(loaded.manifest).toBe(model.manifest);
    expect(loaded.encoder.state).toBe(model.manifest!.features);
    expect(JSON.stringify(model.manifest)).not.toMatch(/"(vocab|counts|rates)"/);
    expect(model.manifest).toEqual(servedManifest(source.manifest as ModelManifest));
    expect(source.manifest).toEqual(given);
    // A second model over the same source loads and encodes alike.
    expect((await servingModel(source).load()).graph).toBe(graph);
  });

  it("encodes requests to the same bits as an encoder compiled from the full manifest", async () => {
    const loaded = await servingModel(source).load();
    const full = compileEncoder(manifest.features);
    for (const { body } of requests) {
      const shared = { user: body.user.features, context: body.context?.features };
      const candidates = body.candidates.map((c) => c.features);
      expect(bits(loaded.encoder.encodeRequest(shared, candidates))).toEqual(
        bits(full.encodeRequest(shared, candidates)),
      );
    }
  });
});
