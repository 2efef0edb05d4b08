/**
 * Bag (mean-pooled) and vector features, and categoricals' frequency and target columns (a
 * user-side and an item-side feature with both), through the exporter: the ONNX graph gives the tfjs network's outputs, the
 * factorised graph gives the plain graph's, for every architecture.
 */
import * as tf from "@tensorflow/tfjs";
import { beforeAll, describe, expect, it } from "vitest";
import { compileEncoder, type EncodedBatch, type FeatureValues } from "../../shared/encoder/encode.ts";
import { DEFAULT_FIT_OPTIONS, fitEncoder } from "../../shared/encoder/fit.ts";
import { embeddingPools } from "../../shared/encoder/state.ts";
import { parseSpec } from "../../shared/spec.ts";
import type { TrainedModel } from "../../trainer/artifact/trained-model.ts";
import { maxAbsDiff } from "../../trainer/core/metrics.ts";
import { createRng } from "../../trainer/core/rng.ts";
import { buildFactorisedOnnx, buildOnnx } from "../../trainer/export/export-model.ts";
import { factorisedLayout } from "../../trainer/export/factorised-layout.ts";
import { openSession, runFactorisedHeads, runHeads } from "../../trainer/export/onnx-session.ts";
import { requestProbeBatch } from "../../trainer/export/probe-batch.ts";
import { type NetworkConfig, paramsFromWeights } from "../../trainer/models/network.ts";
import { ARCHITECTURES } from "../../trainer/models/registry.ts";
import { DEFAULT_ARCH_OPTIONS } from "../../trainer/models/types.ts";
import { predictNetwork } from "../../trainer/train/train-network.ts";
import { randomWeightModel } from "../fixtures/synthetic-model.ts";

const spec = parseSpec({
  format: "jsonl",
  features: [
    { name: "user_tags", type: "multi_categorical", side: "user", minCount: 1 },
    { name: "user_vec", type: "vector", side: "user", dim: 4 },
    { name: "user_id", type: "categorical", side: "user", frequency: true, targetEncoding: true },
    { name: "device", type: "categorical", side: "context", minCount: 1 },
    { name: "item_cat", type: "categorical", minCount: 1, frequency: true, targetEncoding: true },
    { name: "item_tags", type: "multi_categorical", hashBuckets: 40, maxValues: 5 },
    { name: "price", type: "numeric", buckets: 4 },
    { name: "item_vec", type: "vector", dim: 6 },
  ],
  tasks: [
    { name: "click", type: "binary", column: "click" },
    { name: "purchase", type: "binary", column: "buy", given: "click" },
  ],
});

/** Seeded raw rows: bags of 0..6 tags (some unseen later), vectors with 10% missing. */
function rawRows(count: number, seed: number): FeatureValues[] {
  const rng = createRng(seed);
  const pick = (prefix: string, n: number) => `${prefix}${rng.int(n)}`;
  const bag = (prefix: string, n: number) => Array.from({ length: rng.int(7) }, () => pick(prefix, n));
  const vec = (dim: number) => (rng.uniform() < 0.1 ? null : Array.from({ length: dim }, () => rng.normal()));
  return Array.from({ length: count }, () => ({
    user_tags: bag("u", 12),
    user_vec: vec(4),
    user_id: pick("p", 300),
    device: pick("d", 3),
    item_cat: pick("c", 9),
    item_tags: bag("t", 30).join("|"),
    price: rng.uniform() < 0.1 ? null : rng.normal() * 10 + 50,
    item_vec: vec(6),
  }));
}

const labelRng = createRng(9);
const encoder = fitEncoder(
  spec,
  rawRows(400, 1),
  DEFAULT_FIT_OPTIONS,
  Array.from({ length: 400 }, () => [labelRng.int(2), labelRng.int(2)]),
);
// No cross layers: a factorised graph needs a first layer that reads the input itself.
const OPTIONS = { bottom: [16, 8], tower: [8], experts: 3, expertSizes: [12, 8], levels: 2, cross: 0 };

async function randomModel(arch: string, seed: number): Promise<TrainedModel> {
  const config: NetworkConfig = {
    arch,
    options: { ...DEFAULT_ARCH_OPTIONS, ...OPTIONS },
    embeddingDim: 4,
    denseSize: encoder.denseSize,
    idSlots: encoder.idSlots,
    vocabSize: encoder.vocabSize,
    pools: embeddingPools(encoder),
    heads: [
      { name: "click", type: "binary" },
      { name: "purchase", type: "binary", given: "click" },
    ],
  };
  const model = await randomWeightModel(config, encoder, seed);
  // Embeddings larger than init's ±0.05, so a pooling mistake moves the outputs visibly.
  const table = model.weights.embedding!.values;
  for (let i = 0; i < table.length; i++) table[i] = table[i]! * 20;
  return model;
}

function spread(a: Float32Array): number {
  return Math.max(...a) - Math.min(...a);
}

describe.each(Object.keys(ARCHITECTURES))("bags and vectors, tfjs <-> ONNX: %s", (arch) => {
  let model: TrainedModel;
  let batch: EncodedBatch;
  beforeAll(async () => {
    model = await randomModel(arch, 5);
    batch = compileEncoder(encoder).encodeRows(rawRows(300, 2));
  });

  it("the plain graph gives the tfjs outputs on encoded rows (max |dp| <= 1e-5)", async () => {
    const { bytes, manifest } = buildOnnx(model, "float32");
    const actual = await runHeads(await openSession(bytes), manifest, batch);
    const params = paramsFromWeights(model.weights);
    const expected = predictNetwork(params, model.config, batch);
    tf.dispose(Object.values(params));
    for (const head of manifest.heads) {
      expect(maxAbsDiff(actual[head.name]!, expected[head.name]!)).toBeLessThanOrEqual(1e-5);
      expect(spread(expected[head.name]!)).toBeGreaterThan(1e-3);
    }
  });

  it("the factorised graph gives the plain graph's outputs on requests (max |dp| <= 1e-5)", async () => {
    const { bytes, manifest } = buildOnnx(model, "float32");
    const layout = factorisedLayout(encoder);
    const f = buildFactorisedOnnx(model, layout);
    const plain = await openSession(bytes);
    const factorised = await openSession(f.bytes);
    const info = { file: "f.onnx", inputs: f.inputs, ...layout };
    const rows = rawRows(50, 3);
    const [first] = rows;
    const request = compileEncoder(encoder).encodeRequest(
      { user: first, context: first },
      rows.map(({ item_cat, item_tags, price, item_vec }) => ({ item_cat, item_tags, price, item_vec })),
    );
    for (const b of [request, requestProbeBatch(encoder, 1, 9), requestProbeBatch(encoder, 120, 10)]) {
      const a = await runHeads(plain, manifest, b);
      const c = await runFactorisedHeads(factorised, { ...manifest, factorised: info }, b);
      for (const head of manifest.heads)
        expect(maxAbsDiff(a[head.name]!, c[head.name]!)).toBeLessThanOrEqual(1e-5);
    }
  });

  it("int8: the graph runs and stays within 0.05 of float32", async () => {
    const float = buildOnnx(model, "float32");
    const int8 = buildOnnx(model, "int8");
    const a = await runHeads(await openSession(float.bytes), float.manifest, batch);
    const b = await runHeads(await openSession(int8.bytes), int8.manifest, batch);
    for (const head of float.manifest.heads)
      expect(maxAbsDiff(a[head.name]!, b[head.name]!)).toBeLessThan(0.05);
  });
});

describe("pooling", () => {
  it("a bag's embedding does not depend on the order of its values, and does on which they are", async () => {
    const model = await randomModel("shared-bottom", 3);
    const { bytes, manifest } = buildOnnx(model, "float32");
    const session = await openSession(bytes);
    const enc = compileEncoder(encoder);
    const base = rawRows(1, 4)[0]!;
    const run = async (userTags: string[]) =>
      (await runHeads(session, manifest, enc.encodeRows([{ ...base, user_tags: userTags }]))).click![0]!;
    const abc = await run(["u1", "u2", "u3"]);
    for (const order of [
      ["u3", "u1", "u2"],
      ["u2", "u3", "u1"],
      ["u3", "u2", "u1"],
    ])
      expect(await run(order)).toBeCloseTo(abc, 6);
    expect(Math.abs((await run(["u1", "u2", "u4"])) - abc)).toBeGreaterThan(1e-6);
  });
});

describe("the encoder under test", () => {
  it("has target columns (both tasks) on a user-side and an item-side feature", () => {
    for (const name of ["user_id", "item_cat"]) {
      const f = encoder.features.find((x) => x.name === name);
      expect(f?.kind === "categorical" && f.target?.tasks.map((t) => t.task)).toEqual(["click", "purchase"]);
    }
  });
});
