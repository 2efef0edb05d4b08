/** export --int8: model.int8.onnx is small, loads in onnxruntime, and scores like model.onnx. */
import { createHash } from "node:crypto";
import { access, mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import onnxProto from "onnx-proto";
import { beforeAll, describe, expect, it } from "vitest";
import { writeDevEntry } from "../../scripts/dev-config.ts";
import { compileEncoder, type EncodedBatch } from "../../shared/encoder/encode.ts";
import type { ModelManifest } from "../../shared/manifest.ts";
import { loadTrainedModel, saveTrainedModel } from "../../trainer/artifact/trained-model.ts";
import { auc, maxAbsDiff } from "../../trainer/core/metrics.ts";
import { type Dataset, loadDataset } from "../../trainer/data/load-dataset.ts";
import { readSpecFile } from "../../trainer/data/read-spec.ts";
import { splitRows } from "../../trainer/data/split.ts";
import { type ExportResult, exportModelDir } from "../../trainer/export/export-model.ts";
import { openSession, runHeads } from "../../trainer/export/onnx-session.ts";
import { PER_TENSOR_BELOW, quantizeInt8 } from "../../trainer/export/quantize.ts";
import { writeSimulation } from "../../trainer/simulate/simulator.ts";
import { selectBackend } from "../../trainer/train/backend.ts";
import { runTraining } from "../../trainer/workflows/train-and-report.ts";
import { SMALL_WORLD } from "../fixtures/small-world.ts";

const SEED = 5;
let dir: string;
let exported: ExportResult;
/** The same model exported with --int8-form qdq (in its own directory). */
let qdq: ExportResult;
let data: Dataset;

beforeAll(async () => {
  await selectBackend("cpu");
  const work = await mkdtemp(join(tmpdir(), "mtrank-int8-"));
  const sim = writeSimulation(join(work, "sim"), { ...SMALL_WORLD, seed: SEED });
  dir = join(work, "model");
  await runTraining({
    data: sim.dataPath,
    spec: sim.specPath,
    arch: "shared-bottom",
    out: dir,
    epochs: 2,
    seed: SEED,
  });
  exported = await exportModelDir(dir, { int8: true });
  const qdqDir = join(work, "model-qdq");
  await saveTrainedModel(qdqDir, await loadTrainedModel(dir));
  qdq = await exportModelDir(qdqDir, { int8: true, int8Form: "qdq" });
  data = await loadDataset(sim.dataPath, await readSpecFile(sim.specPath));
}, 180_000);

async function scores(file: string, batch: EncodedBatch): Promise<Record<string, Float32Array>> {
  return runHeads(await openSession(await readFile(join(dir, file))), exported.manifest, batch);
}

describe("export --int8", () => {
  it("lists both graphs in the manifest with their sha256 and byte counts", async () => {
    const manifest = JSON.parse(await readFile(join(dir, "manifest.json"), "utf8")) as ModelManifest;
    expect(manifest).toEqual(exported.manifest);
    for (const file of ["model.onnx", "model.int8.onnx"]) {
      const bytes = await readFile(join(dir, file));
      expect(manifest.files[file]).toEqual({
        bytes: bytes.length,
        sha256: createHash("sha256").update(bytes).digest("hex"),
      });
    }
  });

  it("writes an int8 file at most 30% the size of model.onnx", () => {
    const { files, quantization } = exported.manifest;
    const ratio = files["model.int8.onnx"]!.bytes / files["model.onnx"]!.bytes;
    expect(ratio).toBeLessThanOrEqual(0.3);
    expect(quantization?.bytesRatio).toBeCloseTo(ratio, 4);
    expect(quantization?.file).toBe("model.int8.onnx");
    expect(quantization?.form).toBe("integer");
    expect(qdq.manifest.quantization?.form).toBe("qdq");
    expect(qdq.int8Bytes!.length / qdq.onnxBytes.length).toBeLessThanOrEqual(0.3);
  });

  it("stores every dense kernel and the embedding table as int8, biases as float32", () => {
    const { onnx } = onnxProto;
    const graph = onnx.ModelProto.decode(exported.int8Bytes!).graph!;
    const types = new Map(graph.initializer!.map((t) => [t.name!, t.dataType]));
    const INT8 = onnx.TensorProto.DataType.INT8;
    const FLOAT = onnx.TensorProto.DataType.FLOAT;
    const kernels = [...types.keys()].filter((n) => n.endsWith("/kernel/int8"));
    expect(kernels.length).toBeGreaterThan(0);
    for (const k of kernels) expect(types.get(k)).toBe(INT8);
    expect(types.get("embedding/int8")).toBe(INT8);
    for (const [name, type] of types) {
      if (name.endsWith("/bias")) expect(type).toBe(FLOAT);
      // No kernel or table is left in float32.
      expect(name.endsWith("/kernel") || name === "embedding").toBe(false);
    }
    // The default (integer) form multiplies the per-channel kernels in integers (a first layer's
    // split by input group, see GroupedInput) and dequantizes the small per-tensor ones.
    const size = (name: string) =>
      graph.initializer!.find((t) => t.name === name)!.dims!.reduce((n, d) => n * Number(d), 1);
    const readers = new Map<string, string[]>();
    for (const n of graph.node!)
      for (const i of n.input!) readers.set(i, [...(readers.get(i) ?? []), n.opType!]);
    for (const k of kernels) {
      const [op, ...more] = readers.get(k) ?? [];
      expect(more).toEqual([]);
      expect(["MatMulInteger", "DequantizeLinear"]).toContain(op);
      if (op === "DequantizeLinear") expect(size(k)).toBeLessThan(PER_TENSOR_BELOW);
    }
    const ops = graph.node!.map((n) => n.opType);
    expect(ops.filter((op) => op === "MatMulInteger").length).toBeGreaterThan(0);
    // The numbers and the embeddings are quantized apart. The default model's cross layers keep
    // x's columns in place, so the first large layer reads their output sliced in two:
    // columns [0, denseSize) and [denseSize, width).
    const { denseSize } = exported.manifest.features;
    const INT64 = onnx.TensorProto.DataType.INT64;
    const ints = new Map(
      graph
        .initializer!.filter((t) => t.dataType === INT64 && t.rawData?.length === 8)
        .map((t) => [t.name!, Number(Buffer.from(t.rawData!).readBigInt64LE(0))]),
    );
    const slices = new Map(
      graph
        .node!.filter((n) => n.opType === "Slice")
        .map((n) => [n.output![0]!, [ints.get(n.input![1]!), ints.get(n.input![2]!)]]),
    );
    const quantizedSlices = graph
      .node!.filter((n) => n.opType === "DynamicQuantizeLinear" && slices.has(n.input![0]!))
      .map((n) => slices.get(n.input![0]!)!);
    expect(quantizedSlices.length).toBe(2);
    expect(quantizedSlices[0]).toEqual([0, denseSize]);
    expect(quantizedSlices[1]![0]).toBe(denseSize);
    const qdqGraph = onnx.ModelProto.decode(qdq.int8Bytes!).graph!;
    const qdqKernels = qdqGraph.initializer!.filter((t) => t.name!.endsWith("/kernel/int8"));
    const qdqOps = qdqGraph.node!.map((n) => n.opType);
    expect(qdqOps.filter((op) => op === "DequantizeLinear").length).toBe(qdqKernels.length);
    expect(qdqOps).not.toContain("MatMulInteger");
  });

  it("quantizes each activation once, however many layers read it", () => {
    const graph = onnxProto.onnx.ModelProto.decode(exported.int8Bytes!).graph!;
    const quantized = graph.node!.filter((n) => n.opType === "DynamicQuantizeLinear").map((n) => n.input![0]);
    expect(quantized.length).toBeGreaterThan(0);
    expect(new Set(quantized).size).toBe(quantized.length);
  });

  it("loads in onnxruntime and scores the validation rows within 0.02 of float32 (regression: in log1p units)", async () => {
    const { valid } = splitRows(data.rows.length, data.groups, 0.1, SEED);
    expect(valid.length).toBeGreaterThan(1000);
    const batch = compileEncoder(exported.manifest.features).encodeRows(valid.map((i) => data.rows[i]!));
    const reference = await scores("model.onnx", batch);
    const quantized = await scores("model.int8.onnx", batch);
    expect(exported.manifest.heads.map((h) => h.type)).toContain("regression");
    for (const head of exported.manifest.heads) {
      // A regression head outputs label units (dwell seconds, 10 to 100): compare it on the scale
      // it was trained on.
      const scale = head.transform === "log1p" ? Math.log1p : (v: number) => v;
      const a = reference[head.name]!.map(scale);
      const b = quantized[head.name]!.map(scale);
      expect(b.length).toBe(valid.length);
      expect(b.every(Number.isFinite)).toBe(true);
      const diff = maxAbsDiff(a, b);
      expect(diff).toBeLessThanOrEqual(0.02);
      expect(diff).toBeGreaterThan(0); // the weights really were quantized
      // The manifest reports its own measurement (synthetic probe rows, label units) in the same
      // range: for a regression head, relative to its outputs.
      const reported = exported.manifest.quantization!.maxAbsDiff[head.name]!;
      expect(reported).toBeGreaterThan(0);
      const size = head.type === "regression" ? Math.max(...reference[head.name]!.map(Math.abs)) : 1;
      expect(reported).toBeLessThanOrEqual(0.02 * size);
    }
  });

  it.each([
    "integer",
    "qdq",
  ] as const)("%s: loses at most 0.002 AUC per task on the labelled rows", async (form) => {
    const batch = compileEncoder(exported.manifest.features).encodeRows(data.rows);
    const reference = await scores("model.onnx", batch);
    const int8Bytes = form === "integer" ? exported.int8Bytes! : qdq.int8Bytes!;
    const quantized = await runHeads(await openSession(int8Bytes), exported.manifest, batch);
    for (const head of exported.manifest.heads) {
      const labels = data.labels[head.name]!;
      const drop = auc(labels, reference[head.name]!) - auc(labels, quantized[head.name]!);
      expect(Number.isFinite(drop)).toBe(true);
      expect(drop).toBeLessThanOrEqual(0.002);
    }
  });

  it("reproduces the same bytes and manifest on a second export", async () => {
    const manifestBefore = await readFile(join(dir, "manifest.json"), "utf8");
    const again = await exportModelDir(dir, { int8: true });
    expect(Buffer.from(again.int8Bytes!).equals(Buffer.from(exported.int8Bytes!))).toBe(true);
    expect(Buffer.from(again.onnxBytes).equals(Buffer.from(exported.onnxBytes))).toBe(true);
    expect(await readFile(join(dir, "manifest.json"), "utf8")).toBe(manifestBefore);
  });

  it("refuses a model with a NaN weight and writes nothing", async () => {
    const model = await loadTrainedModel(dir);
    const kernel = model.weights["bottom/0/kernel"]!;
    kernel.values[3] = Number.NaN;
    const bad = await mkdtemp(join(tmpdir(), "mtrank-int8-nan-"));
    await saveTrainedModel(bad, model);
    await expect(exportModelDir(bad, { int8: true })).rejects.toThrow(
      /parameter "bottom\/0\/kernel" has a non-finite value \(NaN\) at index 3/,
    );
    for (const file of ["model.onnx", "model.int8.onnx", "manifest.json"])
      await expect(access(join(bad, file))).rejects.toThrow();
  });

  it("drops the quantization section and the int8 file when exported again without --int8", async () => {
    await access(join(dir, "model.int8.onnx"));
    const { manifest } = await exportModelDir(dir);
    expect(Object.keys(manifest.files)).toEqual(["model.onnx"]);
    expect(manifest.quantization).toBeUndefined();
    // An int8 graph the manifest does not list would hold the earlier export's weights.
    await expect(access(join(dir, "model.int8.onnx"))).rejects.toThrow(/ENOENT/);
    // Nothing serves it: the dev worker's entry refuses int8 for this directory.
    expect(() => writeDevEntry(dir, { weights: "int8" })).toThrow(/lists no model.int8.onnx/);
  });
});

describe("quantizeInt8", () => {
  it("uses one symmetric scale per output column (max |w| / 127) and rounds to nearest", () => {
    // [3, 2]: column 0 = 1.2, -2, 0.5; column 1 = all zero.
    const w = new Float32Array([1.2, 0, -2, 0, 0.5, 0]);
    const q = quantizeInt8("w", [3, 2], w, 1);
    expect(q.scales[0]).toBeCloseTo(2 / 127, 7);
    expect(q.scales[1]).toBe(1); // an all-zero channel
    expect(Array.from(q.values)).toEqual([76, 0, -127, 0, 32, 0]);
  });

  it("uses one scale per row with axis 0, and w and -w quantize to opposite values", () => {
    const w = new Float32Array([0.3, -0.3, 0.1, 4, -4, 1]);
    const q = quantizeInt8("t", [2, 3], w, 0);
    expect(Array.from(q.values)).toEqual([127, -127, 42, 127, -127, 32]);
    expect(q.scales[1]).toBeCloseTo(4 / 127, 7);
  });

  it("refuses non-finite values instead of quantizing them to 0", () => {
    expect(() => quantizeInt8("w", [1, 2], new Float32Array([1, Number.NaN]), 1)).toThrow(
      /cannot quantize "w": non-finite value \(NaN\) at index 1/,
    );
  });
});
