/**
 * The operators the worker runs (shared/onnx-ops.ts) are the exporter's. Every architecture,
 * without cross layers, with stacked and with parallel ones, over every kind of feature (numbers
 * with buckets, ids with frequency and target columns, bags, vectors) and head (calibrated binary,
 * binary given another, regression with and without log1p), exported float32 and int8 in both
 * forms, plain and factorised: each graph holds only listed operators in ONNX's default domain, at
 * the listed opset, no subgraph, no external data, far fewer nodes than the cap; together they
 * write exactly EXPORTED_ONNX_OPS (a list entry the exporter no longer writes is moved to
 * EARLIER_EXPORTED_ONNX_OPS or dropped); and the worker's walker (edge/model/graph-ops.ts) accepts
 * each one and counts what onnx-proto decodes.
 */
import onnxProto from "onnx-proto";
import { beforeAll, describe, expect, it } from "vitest";
import { checkGraphOps } from "../../edge/model/graph-ops.ts";
import { DEFAULT_FIT_OPTIONS, fitEncoder } from "../../shared/encoder/fit.ts";
import { embeddingPools } from "../../shared/encoder/state.ts";
import {
  EARLIER_EXPORTED_ONNX_OPS,
  EXPORTED_ONNX_OPS,
  EXPORTED_ONNX_OPSETS,
  MAX_GRAPH_NODES,
} from "../../shared/onnx-ops.ts";
import { parseSpec } from "../../shared/spec.ts";
import type { TrainedModel } from "../../trainer/artifact/trained-model.ts";
import { ONNX_OPSET } from "../../trainer/core/onnx-graph.ts";
import { createRng } from "../../trainer/core/rng.ts";
import { buildFactorisedOnnx, buildOnnx } from "../../trainer/export/export-model.ts";
import { factorisedLayout } from "../../trainer/export/factorised-layout.ts";
import { INT8_FORMS } from "../../trainer/export/quantize-form.ts";
import { embeddingLayout, type NetworkConfig } from "../../trainer/models/network.ts";
import { ARCHITECTURES } from "../../trainer/models/registry.ts";
import { type CrossLayout, DEFAULT_ARCH_OPTIONS } from "../../trainer/models/types.ts";
import { selectBackend } from "../../trainer/train/backend.ts";
import { randomWeightModel } from "../fixtures/synthetic-model.ts";

const { onnx } = onnxProto;
const ATTRIBUTE = onnx.AttributeProto.AttributeType;
/** The attribute types the exporter writes (trainer/core/onnx-graph.ts attribute()). */
const ATTRIBUTE_TYPES = [ATTRIBUTE.FLOAT, ATTRIBUTE.INT, ATTRIBUTE.STRING, ATTRIBUTE.INTS];

const spec = parseSpec({
  format: "jsonl",
  features: [
    { name: "user_tags", type: "multi_categorical", side: "user", minCount: 1 },
    { name: "user_vec", type: "vector", side: "user", dim: 3 },
    { name: "user_id", type: "categorical", side: "user", frequency: true, targetEncoding: true },
    { name: "age", type: "numeric", side: "user", buckets: 4 },
    { name: "device", type: "categorical", side: "context", minCount: 1 },
    { name: "item_cat", type: "categorical", minCount: 1, frequency: true, targetEncoding: true },
    { name: "item_tags", type: "multi_categorical", hashBuckets: 30, maxValues: 4 },
    { name: "price", type: "numeric", buckets: 4 },
    { name: "item_vec", type: "vector", dim: 3 },
  ],
  tasks: [
    { name: "click", type: "binary", column: "click" },
    { name: "purchase", type: "binary", column: "buy", given: "click" },
  ],
});

const rng = createRng(31);
const rows = Array.from({ length: 300 }, () => ({
  user_tags: Array.from({ length: rng.int(4) }, () => `u${rng.int(8)}`),
  user_vec: rng.uniform() < 0.1 ? null : [rng.normal(), rng.normal(), rng.normal()],
  user_id: `p${rng.int(60)}`,
  age: rng.uniform() < 0.1 ? null : 20 + rng.int(50),
  device: `d${rng.int(3)}`,
  item_cat: `c${rng.int(9)}`,
  item_tags: Array.from({ length: rng.int(5) }, () => `t${rng.int(20)}`).join("|"),
  price: rng.normal() * 10 + 50,
  item_vec: [rng.normal(), rng.normal(), rng.normal()],
}));
const encoder = fitEncoder(
  spec,
  rows,
  DEFAULT_FIT_OPTIONS,
  rows.map(() => [rng.int(2), rng.int(2)]),
);

const HEADS: NetworkConfig["heads"] = [
  { name: "click", type: "binary", calibration: { scale: 1.1, shift: -0.2 } },
  { name: "purchase", type: "binary", given: "click" },
  { name: "dwell", type: "regression", transform: "log1p", scale: { mean: 1.5, std: 0.8 } },
  { name: "stay", type: "regression", transform: "none", scale: { mean: 30, std: 12 } },
];

/** First layers over 4,096 weights, so the integer form multiplies in integers (MatMulInteger). */
const OPTIONS = { bottom: [96, 8], tower: [8], experts: 2, expertSizes: [96, 8], levels: 2, crossRank: 4 };

type CrossCase = { cross: 0 } | { cross: 2; crossLayout: CrossLayout };
const CROSS: readonly CrossCase[] = [
  { cross: 0 },
  { cross: 2, crossLayout: "stacked" },
  { cross: 2, crossLayout: "parallel" },
];

async function model(arch: string, cross: CrossCase): Promise<TrainedModel> {
  const config: NetworkConfig = {
    arch,
    options: { ...DEFAULT_ARCH_OPTIONS, ...OPTIONS, ...cross },
    ...embeddingLayout(arch, HEADS, 4),
    denseSize: encoder.denseSize,
    idSlots: encoder.idSlots,
    vocabSize: encoder.vocabSize,
    pools: embeddingPools(encoder),
    heads: HEADS,
  };
  return randomWeightModel(config, encoder, 7);
}

/** Every graph export writes for `trained`: float32 and each int8 form, plain and (unless stacked cross layers) factorised. */
function exportedGraphs(trained: TrainedModel, factorised: boolean): [string, Uint8Array][] {
  const graphs: [string, Uint8Array][] = [["model.onnx", buildOnnx(trained).bytes]];
  for (const form of INT8_FORMS)
    graphs.push([`model.int8.onnx (${form})`, buildOnnx(trained, "int8", form).bytes]);
  if (!factorised) return graphs;
  const layout = factorisedLayout(trained.encoder);
  graphs.push(["model.factorised.onnx", buildFactorisedOnnx(trained, layout).bytes]);
  for (const form of INT8_FORMS)
    graphs.push([
      `model.factorised.int8.onnx (${form})`,
      buildFactorisedOnnx(trained, layout, "int8", form).bytes,
    ]);
  return graphs;
}

const written = new Set<string>();
let largest = 0;

beforeAll(async () => {
  await selectBackend("cpu");
});

describe.each(Object.keys(ARCHITECTURES))("graphs the exporter writes: %s", (arch) => {
  it.each(
    CROSS,
  )("cross layers %o: only listed operators, default domain, opset, no subgraph or external data", async (cross) => {
    const trained = await model(arch, cross);
    const graphs = exportedGraphs(trained, !("crossLayout" in cross && cross.crossLayout === "stacked"));
    for (const [file, bytes] of graphs) {
      const decoded = onnx.ModelProto.decode(bytes);
      expect(
        decoded.opsetImport?.map((o) => [o.domain ?? "", Number(o.version)]),
        file,
      ).toEqual([["", ONNX_OPSET]]);
      expect(decoded.functions ?? [], file).toEqual([]);
      const graph = decoded.graph!;
      for (const node of graph.node ?? []) {
        const label = `${file}: ${node.opType} ${node.name ?? node.output?.[0]}`;
        expect(EXPORTED_ONNX_OPS, label).toContain(node.opType);
        expect(node.domain ?? "", label).toBe("");
        for (const attribute of node.attribute ?? []) {
          expect(ATTRIBUTE_TYPES, `${label}: ${attribute.name}`).toContain(attribute.type);
          expect(attribute.g ?? null, label).toBeNull();
          expect(attribute.graphs ?? [], label).toEqual([]);
        }
        written.add(node.opType!);
      }
      for (const tensor of graph.initializer ?? []) {
        expect(tensor.dataLocation ?? 0, `${file}: ${tensor.name}`).toBe(
          onnx.TensorProto.DataLocation.DEFAULT,
        );
        expect(tensor.externalData ?? [], `${file}: ${tensor.name}`).toEqual([]);
      }
      expect(graph.sparseInitializer ?? [], file).toEqual([]);
      // The worker's walker accepts it and reads the same graph.
      expect(checkGraphOps(bytes, file), file).toEqual({
        nodes: graph.node!.length,
        initializers: graph.initializer!.length,
      });
      largest = Math.max(largest, graph.node!.length);
    }
  });
});

describe("the lists", () => {
  it("together the graphs above write every operator of EXPORTED_ONNX_OPS, and no earlier one", () => {
    expect([...written].sort()).toEqual([...EXPORTED_ONNX_OPS].sort());
    for (const op of EARLIER_EXPORTED_ONNX_OPS) expect(EXPORTED_ONNX_OPS).not.toContain(op);
    expect(new Set(EXPORTED_ONNX_OPS).size).toBe(EXPORTED_ONNX_OPS.length);
  });

  it("the exporter's opset is the one allowed, and its graphs stay far under the node cap", () => {
    expect(ONNX_OPSET).toBeGreaterThanOrEqual(EXPORTED_ONNX_OPSETS.min);
    expect(ONNX_OPSET).toBeLessThanOrEqual(EXPORTED_ONNX_OPSETS.max);
    expect(largest).toBeGreaterThan(0);
    expect(largest).toBeLessThan(MAX_GRAPH_NODES / 5);
  });
});
