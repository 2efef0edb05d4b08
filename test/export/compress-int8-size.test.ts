/** int8 file size: per-tensor scales for small kernels and short names keep PLE and MMoE at <= 30% of float32 (default integer form). */
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import onnxProto from "onnx-proto";
import { beforeAll, describe, expect, it } from "vitest";
import { compileEncoder } from "../../shared/encoder/encode.ts";
import { auc } from "../../trainer/core/metrics.ts";
import { type Dataset, loadDataset } from "../../trainer/data/load-dataset.ts";
import { readSpecFile } from "../../trainer/data/read-spec.ts";
import { type ExportResult, exportModelDir } from "../../trainer/export/export-model.ts";
import { openSession, runHeads } from "../../trainer/export/onnx-session.ts";
import { PER_TENSOR_BELOW, quantizeInt8PerTensor } from "../../trainer/export/quantize.ts";
import { DEFAULT_ARCH_OPTIONS } from "../../trainer/models/types.ts";
import { writeSimulation } from "../../trainer/simulate/simulator.ts";
import { selectBackend } from "../../trainer/train/backend.ts";
import { runTraining } from "../../trainer/workflows/train-and-report.ts";
import { SMALL_WORLD } from "../fixtures/small-world.ts";

const SEED = 11;
const ARCHS = ["ple", "mmoe"] as const;
const exported: Record<string, ExportResult> = {};
let data: Dataset;

beforeAll(async () => {
  await selectBackend("cpu");
  const work = await mkdtemp(join(tmpdir(), "mtrank-int8-size-"));
  // Click and purchase: the world these size bounds were set on (a regression head's small
  // tower and float scale constants put a three-head PLE at 30.1%).
  const sim = writeSimulation(join(work, "sim"), { ...SMALL_WORLD, seed: SEED, dwellTask: false });
  data = await loadDataset(sim.dataPath, await readSpecFile(sim.specPath));
  for (const arch of ARCHS) {
    const out = join(work, arch);
    // The default widths whatever the file's size (../../trainer/train/layer-widths.ts): the
    // kernels must be large enough for a scale per output column.
    await runTraining({
      data: sim.dataPath,
      spec: sim.specPath,
      arch,
      out,
      epochs: 1,
      seed: SEED,
      options: DEFAULT_ARCH_OPTIONS,
    });
    exported[arch] = await exportModelDir(out, { int8: true });
  }
}, 240_000);

describe.each(ARCHS)("%s model.int8.onnx", (arch) => {
  it("is at most 30% of the float32 file", () => {
    const { onnxBytes, int8Bytes, manifest } = exported[arch]!;
    const ratio = int8Bytes!.length / onnxBytes.length;
    expect(ratio).toBeLessThanOrEqual(0.3);
    expect(manifest.quantization!.bytesRatio).toBeCloseTo(ratio, 4);
  });

  it("gives small kernels one scale and large ones a scale per output column", () => {
    const { onnx } = onnxProto;
    const graph = onnx.ModelProto.decode(exported[arch]!.int8Bytes!).graph!;
    const inits = new Map(graph.initializer!.map((t) => [t.name!, t]));
    let perTensor = 0;
    let perChannel = 0;
    for (const node of graph.node!) {
      const kernel = inits.get(node.input![node.opType === "MatMulInteger" ? 1 : 0] ?? "");
      if (!kernel?.name?.endsWith("/kernel/int8")) continue;
      const size = kernel.dims!.reduce((n, d) => n * Number(d), 1);
      if (node.opType === "DequantizeLinear") {
        // Only small kernels are dequantized in the integer form, with one scale.
        expect(size).toBeLessThan(PER_TENSOR_BELOW);
        expect(inits.get(node.input![1]!)!.dims).toEqual([]);
        perTensor++;
      } else if (node.opType === "MatMulInteger") perChannel++;
    }
    // The integer form's kernel scales, one per output column, multiply the integer products.
    const columnScales = graph
      .node!.filter((n) => n.opType === "Mul")
      .flatMap((n) => n.input!.map((i) => inits.get(i)))
      .filter((t) => t !== undefined && /^s(_\d+)?$/.test(t.name!));
    expect(columnScales.length).toBeGreaterThan(0);
    for (const t of columnScales) expect(t!.dims!.length).toBe(1);
    expect(perTensor).toBeGreaterThan(0);
    expect(perChannel).toBeGreaterThan(0);
  });

  it("keeps every layer's bias (the constant added to its MatMul) in float32", () => {
    const { onnx } = onnxProto;
    const graph = onnx.ModelProto.decode(exported[arch]!.int8Bytes!).graph!;
    const inits = new Map(graph.initializer!.map((t) => [t.name!, t]));
    // One bias Add per bias of the float graph, each adding a float32 constant (a dense layer has
    // one bias per kernel; a cross layer's two kernels, down and up, share one).
    const floatGraph = onnx.ModelProto.decode(exported[arch]!.onnxBytes).graph!;
    const layers = floatGraph.initializer!.filter((t) => t.name!.endsWith("/bias")).length;
    expect(graph.node!.some((n) => n.opType === "MatMulInteger")).toBe(true);
    // (Not counting the calibration's `shift` constants, added to each binary head's logit.)
    const biases = graph
      .node!.filter((n) => n.opType === "Add" && n.input!.some((i) => inits.has(i)))
      .map((n) => inits.get(n.input!.find((i) => inits.has(i))!))
      .filter((t) => !/^shift(_\d+)?$/.test(t?.name ?? ""));
    expect(layers).toBeGreaterThan(0);
    expect(biases.length).toBe(layers);
    for (const b of biases) expect(b?.dataType).toBe(onnx.TensorProto.DataType.FLOAT);
  });

  it("loses at most 0.002 AUC per task on the labelled rows", async () => {
    const { manifest, onnxBytes, int8Bytes } = exported[arch]!;
    const batch = compileEncoder(manifest.features).encodeRows(data.rows);
    const reference = await runHeads(await openSession(onnxBytes), manifest, batch);
    const quantized = await runHeads(await openSession(int8Bytes!), manifest, batch);
    for (const head of manifest.heads) {
      const labels = data.labels[head.name]!;
      const drop = auc(labels, reference[head.name]!) - auc(labels, quantized[head.name]!);
      expect(drop).toBeLessThanOrEqual(0.002);
      expect(quantized[head.name]!.some((p, i) => p !== reference[head.name]![i])).toBe(true);
    }
  });
});

describe("quantizeInt8PerTensor", () => {
  it("uses one symmetric scale, max |w| / 127, over the whole tensor", () => {
    const q = quantizeInt8PerTensor("w", new Float32Array([0.5, -2, 1, 0]));
    expect(q.scales.length).toBe(1);
    expect(q.scales[0]).toBeCloseTo(2 / 127, 7);
    expect(Array.from(q.values)).toEqual([32, -127, 64, 0]);
  });

  it("refuses non-finite values, naming the tensor", () => {
    expect(() => quantizeInt8PerTensor("k", new Float32Array([1, Number.POSITIVE_INFINITY]))).toThrow(
      /cannot quantize "k": non-finite value \(Infinity\) at index 1/,
    );
  });
});
