/** The two int8 forms of the dense layers ("integer", "qdq") on every architecture, and the integer builder's rules. */
import onnxProto from "onnx-proto";
import * as ort from "onnxruntime-web";
import { beforeAll, describe, expect, it } from "vitest";
import type { TrainedModel } from "../../trainer/artifact/trained-model.ts";
import { maxAbsDiff } from "../../trainer/core/metrics.ts";
import { createGraph } from "../../trainer/core/onnx-graph.ts";
import { buildOnnx } from "../../trainer/export/export-model.ts";
import { openSession, runHeads } from "../../trainer/export/onnx-session.ts";
import { requestProbeBatch } from "../../trainer/export/probe-batch.ts";
import { parseInt8Form } from "../../trainer/export/quantize-form.ts";
import { integerKernelsBuilder } from "../../trainer/export/quantize-integer.ts";
import { ARCHITECTURES } from "../../trainer/models/registry.ts";
import { selectBackend } from "../../trainer/train/backend.ts";
import { referenceFeatures, syntheticModel } from "../fixtures/synthetic-model.ts";

beforeAll(async () => {
  await selectBackend("cpu");
});

function opTypes(bytes: Uint8Array): string[] {
  return onnxProto.onnx.ModelProto.decode(bytes).graph!.node!.map((n) => n.opType!);
}

/** The largest |Δ| between two graphs of `model` over every head, on 300 probe candidates. */
async function graphsDiff(model: TrainedModel, a: Uint8Array, b: Uint8Array): Promise<number> {
  const manifest = buildOnnx(model).manifest;
  const batch = requestProbeBatch(model.encoder, 300, 300);
  const x = await runHeads(await openSession(a), manifest, batch);
  const y = await runHeads(await openSession(b), manifest, batch);
  return Math.max(...manifest.heads.map((h) => maxAbsDiff(x[h.name]!, y[h.name]!)));
}

describe.each(Object.keys(ARCHITECTURES))("int8 forms: %s", (arch) => {
  it("integer and qdq both load in onnxruntime-web and stay within 0.02 of float32", async () => {
    // Wide enough (first layers over 4096 weights) that the integer form has kernels to multiply.
    const model = await syntheticModel({
      arch,
      features: referenceFeatures().slice(0, 20),
      options: { experts: 2, expertSizes: [64, 32], tower: [16] },
      seed: 3,
    });
    const float = buildOnnx(model).bytes;
    const integer = buildOnnx(model, "int8", "integer").bytes;
    const qdq = buildOnnx(model, "int8", "qdq").bytes;
    expect(opTypes(integer)).toContain("MatMulInteger");
    expect(opTypes(qdq)).not.toContain("MatMulInteger");
    // ReLU is written as Max(y, 0): onnxruntime-web's Relu kernel is far slower (blocks.ts).
    for (const graph of [float, integer, qdq]) {
      expect(opTypes(graph)).not.toContain("Relu");
      expect(opTypes(graph)).toContain("Max");
    }
    for (const int8 of [integer, qdq]) {
      const diff = await graphsDiff(model, float, int8);
      expect(diff).toBeGreaterThan(0);
      expect(diff).toBeLessThanOrEqual(0.02);
    }
  });
});

describe("integerKernelsBuilder", () => {
  const wide = (n: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i) * 0.1);

  it("quantizes an activation once for every layer that reads it", () => {
    const g = integerKernelsBuilder(createGraph("t"));
    const x = g.input("x", "float32", ["n", 64]);
    for (const name of ["a", "b"])
      g.node("MatMul", [x, g.initializer(`${name}/kernel`, [64, 128], wide(64 * 128))]);
    const ops = opTypes(g.toBytes({}));
    expect(ops.filter((op) => op === "DynamicQuantizeLinear").length).toBe(1);
    expect(ops.filter((op) => op === "MatMulInteger").length).toBe(2);
  });

  it("dequantizes a kernel that is read other than as a MatMul's weights, and runs", async () => {
    const g = integerKernelsBuilder(createGraph("t"));
    const x = g.input("x", "float32", ["n", 64]);
    const kernel = g.initializer("a/kernel", [64, 128], wide(64 * 128));
    const y = g.node("MatMul", [x, g.node("Identity", [kernel])], {}, "y");
    g.output(y, "float32", ["n", 128]);
    const bytes = g.toBytes({});
    expect(opTypes(bytes)).toEqual(["DequantizeLinear", "Identity", "MatMul"]);
    const session = await ort.InferenceSession.create(bytes);
    const out = await session.run({ x: new ort.Tensor("float32", new Float32Array(64).fill(1), [1, 64]) });
    let expected = 0;
    for (let r = 0; r < 64; r++) expected += wide(64 * 128)[r * 128]!;
    expect((out.y!.data as Float32Array)[0]).toBeCloseTo(expected, 2);
  });

  it("needs the root graph builder", () => {
    const root = createGraph("t");
    const { nodeOutputs: _, ...wrapper } = root;
    expect(() => integerKernelsBuilder(wrapper)).toThrow(/root graph builder/);
  });
});

describe("parseInt8Form", () => {
  it("accepts integer and qdq and names the allowed values otherwise", () => {
    expect(parseInt8Form("integer")).toBe("integer");
    expect(parseInt8Form("qdq")).toBe("qdq");
    expect(() => parseInt8Form("int4")).toThrow(/--int8-form: expected one of qdq, integer, got "int4"/);
  });
});
