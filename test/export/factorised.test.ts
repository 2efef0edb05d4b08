/**
 * export --factorised: the graph whose user/context part runs once per request gives the plain
 * graph's outputs for every architecture, and its first layers really are split.
 */
import { access, mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import onnxProto from "onnx-proto";
import { beforeAll, describe, expect, it } from "vitest";
import { compileEncoder } from "../../shared/encoder/encode.ts";
import type { ModelManifest } from "../../shared/manifest.ts";
import { saveTrainedModel, type TrainedModel } from "../../trainer/artifact/trained-model.ts";
import { maxAbsDiff } from "../../trainer/core/metrics.ts";
import { buildFactorisedOnnx, exportModelDir } from "../../trainer/export/export-model.ts";
import { factorisedLayout } from "../../trainer/export/factorised-layout.ts";
import { openSession, runFactorisedHeads, runHeads } from "../../trainer/export/onnx-session.ts";
import { requestProbeBatch } from "../../trainer/export/probe-batch.ts";
import { modelShape } from "../../trainer/models/network.ts";
import { ARCHITECTURES } from "../../trainer/models/registry.ts";
import { type SyntheticFeature, syntheticModel } from "../fixtures/synthetic-model.ts";
import { compareFactorised } from "./factorised-compare.ts";

const FEATURES: SyntheticFeature[] = [
  { name: "user_segment", side: "user", ids: 40 },
  { name: "age", side: "user", buckets: 5 },
  { name: "income", side: "user" },
  { name: "device", side: "context", ids: 6 },
  { name: "item_cat", side: "item", ids: 50 },
  { name: "brand", side: "item", ids: 30 },
  { name: "price", side: "item", buckets: 3 },
  { name: "rating", side: "item" },
];
// No cross layers: stacked ones (the default) have no factorised form; parallel ones are
// factorised-cross.test.ts's.
const OPTIONS = { bottom: [24, 12], tower: [8], experts: 3, expertSizes: [16, 8], levels: 2, cross: 0 };

describe.each(Object.keys(ARCHITECTURES))("factorised graph: %s", (arch) => {
  let model: TrainedModel;
  beforeAll(async () => {
    model = await syntheticModel({ arch, features: FEATURES, options: OPTIONS, seed: 11 });
  });

  it("gives the plain graph's head outputs (max |Δp| <= 1e-5) for requests of 1 to 300 candidates", async () => {
    const batches = [1, 7, 300].map((rows, i) => requestProbeBatch(model.encoder, rows, 100 + i));
    const { diff, spread } = await compareFactorised(model, "float32", batches);
    expect(diff).toBeLessThanOrEqual(1e-5);
    expect(spread).toBeGreaterThan(1e-3); // outputs vary across candidates, so equality means something
  });

  it("splits every first-layer kernel into a user and an item part", () => {
    const { bytes } = buildFactorisedOnnx(model, factorisedLayout(model.encoder));
    const graph = onnxProto.onnx.ModelProto.decode(bytes).graph!;
    const width = modelShape(model.config).inputWidth;
    const dims = new Map(graph.initializer!.map((t) => [t.name!, (t.dims ?? []).map(Number)]));
    const users = [...dims.keys()].filter((n) => n.endsWith("/user/kernel"));
    expect(users.length).toBeGreaterThan(0);
    for (const name of users) {
      const item = dims.get(name.replace("/user/kernel", "/item/kernel"));
      expect(item).toBeDefined();
      expect(dims.get(name)![0]! + item![0]!).toBe(width);
      // The plain first-layer kernel is gone: nothing left reads the full-width x.
      expect(dims.has(name.replace("/user/kernel", "/kernel"))).toBe(false);
    }
    for (const [name, d] of dims) if (name.endsWith("/kernel")) expect(d[0]).not.toBe(width);
    expect(graph.input!.map((i) => i.name)).toEqual(["user_dense", "user_ids", "item_dense", "item_ids"]);
  });

  it("int8: stays within 0.02 of the plain int8 graph", async () => {
    const { diff } = await compareFactorised(model, "int8", [requestProbeBatch(model.encoder, 200, 5)]);
    expect(diff).toBeLessThanOrEqual(0.02);
  });
});

describe("export --factorised", () => {
  it("writes the factorised graphs, lists them in the manifest, and they score encoded requests like model.onnx", async () => {
    const model = await syntheticModel({ arch: "mmoe", features: FEATURES, options: OPTIONS, seed: 3 });
    const dir = await mkdtemp(join(tmpdir(), "mtrank-factorised-"));
    await saveTrainedModel(dir, model);
    const { manifest } = await exportModelDir(dir, { int8: true, factorised: true });
    const onDisk = JSON.parse(await readFile(join(dir, "manifest.json"), "utf8")) as ModelManifest;
    expect(onDisk).toEqual(manifest);
    expect(manifest.factorised).toEqual({
      file: "model.factorised.onnx",
      int8File: "model.factorised.int8.onnx",
      inputs: { userDense: "user_dense", userIds: "user_ids", itemDense: "item_dense", itemIds: "item_ids" },
      user: { dense: [0, 1, 2, 3], ids: [0, 1, 2] },
      item: { dense: [4, 5, 6, 7], ids: [3, 4, 5] },
    });
    for (const file of ["model.factorised.onnx", "model.factorised.int8.onnx"])
      expect(manifest.files[file]?.bytes).toBe((await readFile(join(dir, file))).length);

    // A request encoded the way the worker encodes it.
    const encoder = compileEncoder(manifest.features);
    const candidates = Array.from({ length: 50 }, (_, i) => ({
      item_cat: `c${i % 13}`,
      brand: `b${i % 7}`,
      price: (i % 11) - 5,
      rating: i % 3 === 0 ? null : i / 25 - 1,
    }));
    const batch = encoder.encodeRequest(
      { user: { user_segment: "s3", age: 0.7, income: -1.2 }, context: { device: "ios" } },
      candidates,
    );
    const plain = await runHeads(await openSession(await readFile(join(dir, "model.onnx"))), manifest, batch);
    const factorised = await runFactorisedHeads(
      await openSession(await readFile(join(dir, "model.factorised.onnx"))),
      { ...manifest, factorised: manifest.factorised! },
      batch,
    );
    for (const head of manifest.heads)
      expect(maxAbsDiff(plain[head.name]!, factorised[head.name]!)).toBeLessThanOrEqual(1e-5);
  });

  it("is left out unless asked for", async () => {
    const model = await syntheticModel({ arch: "single", features: FEATURES, options: OPTIONS });
    const dir = await mkdtemp(join(tmpdir(), "mtrank-factorised-off-"));
    await saveTrainedModel(dir, model);
    const { manifest } = await exportModelDir(dir);
    expect(manifest.factorised).toBeUndefined();
    await expect(access(join(dir, "model.factorised.onnx"))).rejects.toThrow();
  });

  it("refuses an input layer with columns it cannot assign to a side (e.g. embedding interactions)", async () => {
    const model = await syntheticModel({ arch: "mmoe", features: FEATURES, options: OPTIONS });
    // Two input columns no feature writes: what cross-side dot products would add.
    const wider = { ...model, config: { ...model.config, denseSize: model.config.denseSize + 2 } };
    expect(() => buildFactorisedOnnx(wider, factorisedLayout(model.encoder))).toThrow(
      /export --factorised: the input layer is \d+ wide but its dense columns and embeddings make \d+/,
    );
  });

  it("refuses a model with no user or context features, naming why", async () => {
    const model = await syntheticModel({
      arch: "shared-bottom",
      features: FEATURES.filter((f) => f.side === "item"),
      options: OPTIONS,
    });
    const dir = await mkdtemp(join(tmpdir(), "mtrank-factorised-items-"));
    await saveTrainedModel(dir, model);
    await expect(exportModelDir(dir, { factorised: true })).rejects.toThrow(
      /export --factorised: the model has no user or context features: nothing to factorise/,
    );
  });
});
