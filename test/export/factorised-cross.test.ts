/**
 * export --factorised with cross layers: the parallel layout (--cross-layout parallel) keeps
 * the first layers on the input, so they still split by side while the cross layers run per
 * candidate on x rebuilt from both sides; the stacked layout is refused.
 */
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import onnxProto from "onnx-proto";
import { describe, expect, it } from "vitest";
import { saveTrainedModel, type TrainedModel } from "../../trainer/artifact/trained-model.ts";
import { buildFactorisedOnnx, exportModelDir } from "../../trainer/export/export-model.ts";
import { factorisedLayout } from "../../trainer/export/factorised-layout.ts";
import { requestProbeBatch } from "../../trainer/export/probe-batch.ts";
import { modelShape } from "../../trainer/models/network.ts";
import { ARCHITECTURES } from "../../trainer/models/registry.ts";
import { type SyntheticFeature, syntheticModel } from "../fixtures/synthetic-model.ts";
import { compareFactorised } from "./factorised-compare.ts";

const FEATURES: SyntheticFeature[] = [
  { name: "user_segment", side: "user", ids: 40 },
  { name: "age", side: "user", buckets: 5 },
  { name: "device", side: "context", ids: 6 },
  { name: "item_cat", side: "item", ids: 50 },
  { name: "price", side: "item", buckets: 3 },
  { name: "rating", side: "item" },
];
const OPTIONS = { bottom: [16, 8], tower: [8], experts: 3, expertSizes: [12, 8], cross: 2, crossRank: 4 };

/**
 * A fresh cross network is the identity and a fresh cross tower adds nothing (zero up maps and
 * logit kernels), which would hide a wrong graph: give every all-zero kernel random values.
 */
function withLiveCross(model: TrainedModel, seed: number): TrainedModel {
  let state = seed * 7919;
  for (const [name, w] of Object.entries(model.weights)) {
    if (!name.endsWith("/kernel") || w.values.some((v) => v !== 0)) continue;
    for (let i = 0; i < w.values.length; i++) {
      state = (state * 1103515245 + 12345) % 2147483648;
      w.values[i] = (state / 2147483648 - 0.5) * 0.4;
    }
  }
  return model;
}

async function parallelModel(arch: string, seed: number): Promise<TrainedModel> {
  const model = await syntheticModel({
    arch,
    features: FEATURES,
    options: { ...OPTIONS, crossLayout: "parallel" },
    seed,
  });
  return withLiveCross(model, seed);
}

describe.each(Object.keys(ARCHITECTURES))("factorised graph, parallel cross layers: %s", (arch) => {
  it("gives the plain graph's head outputs (max |Δp| <= 1e-5) for 1 to 300 candidates", async () => {
    const model = await parallelModel(arch, 5);
    const names = Object.keys(model.weights);
    expect(names.some((n) => /(^|\/)cross_1\/up\/kernel$/.test(n))).toBe(true);
    expect(names.some((n) => /(^|\/)cross_tower_[^/]+\/logit\/kernel$/.test(n))).toBe(true);
    const batches = [1, 7, 300].map((rows, i) => requestProbeBatch(model.encoder, rows, 40 + i));
    const { diff, spread } = await compareFactorised(model, "float32", batches);
    expect(diff).toBeLessThanOrEqual(1e-5);
    expect(spread).toBeGreaterThan(1e-3);
  });
});

describe("factorised graph, parallel cross layers", () => {
  it("still splits the architecture's first layers; the cross layers read both sides side by side", async () => {
    const model = await parallelModel("mmoe", 6);
    const { bytes } = buildFactorisedOnnx(model, factorisedLayout(model.encoder));
    const graph = onnxProto.onnx.ModelProto.decode(bytes).graph!;
    const width = modelShape(model.config).inputWidth;
    const dims = new Map(graph.initializer!.map((t) => [t.name!, (t.dims ?? []).map(Number)]));
    for (const layer of ["expert_0/0", "expert_2/0", "gates"]) {
      expect(dims.get(`${layer}/user/kernel`)?.[0], layer).toBeGreaterThan(0);
      expect(dims.get(`${layer}/user/kernel`)![0]! + dims.get(`${layer}/item/kernel`)![0]!).toBe(width);
      expect(dims.has(`${layer}/kernel`), layer).toBe(false);
    }
    // What reads x whole per candidate: the cross layers and the cross towers, on [user | item]
    // with their rows in that order, so no node reorders x's columns per candidate.
    const full = [...dims].filter(([n, d]) => n.endsWith("/kernel") && d[0] === width).map(([n]) => n);
    expect(graph.node!.some((n) => n.opType === "Gather" && n.output![0]!.startsWith("x/full"))).toBe(false);
    expect(full.sort()).toEqual([
      "cross_0/down/kernel",
      "cross_1/down/kernel",
      "cross_tower_click/0/kernel",
      "cross_tower_purchase/0/kernel",
    ]);
  });

  it("int8: stays within 0.02 of the plain int8 graph", async () => {
    for (const arch of ["mmoe", "single"]) {
      const model = await parallelModel(arch, 7);
      const { diff } = await compareFactorised(model, "int8", [requestProbeBatch(model.encoder, 200, 9)]);
      expect(diff, arch).toBeLessThanOrEqual(0.02);
    }
  });

  it("export --factorised refuses stacked cross layers, naming the flags that avoid them", async () => {
    const model = await syntheticModel({ arch: "mmoe", features: FEATURES, options: OPTIONS });
    const dir = await mkdtemp(join(tmpdir(), "mtrank-factorised-stacked-"));
    await saveTrainedModel(dir, model);
    await expect(exportModelDir(dir, { factorised: true })).rejects.toThrow(
      /--factorised: the model has stacked cross layers .*--cross-layout parallel \(or --cross 0\)/,
    );
  });
});
