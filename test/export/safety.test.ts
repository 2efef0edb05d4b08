/**
 * The exporter's guards: non-finite weights are refused at export, a corrupt or truncated graph
 * is refused at load, and the same weights always give the same bytes.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { access, mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import {
  loadTrainedModel,
  saveTrainedModel,
  type TrainedModel,
} from "../../trainer/artifact/trained-model.ts";
import { buildOnnx, exportModelDir } from "../../trainer/export/export-model.ts";
import { openVerifiedSession } from "../../trainer/export/onnx-session.ts";
import { openServedModel } from "../../trainer/predict/served-model.ts";
import { type SyntheticFeature, syntheticModel } from "../fixtures/synthetic-model.ts";

const FEATURES: SyntheticFeature[] = [
  { name: "user_segment", side: "user", ids: 20 },
  { name: "age", side: "user" },
  { name: "hour", side: "context", buckets: 4 },
  { name: "item_cat", side: "item", ids: 30 },
  { name: "price", side: "item" },
];

let model: TrainedModel;
let dir: string;

beforeAll(async () => {
  model = await syntheticModel({
    arch: "mmoe",
    features: FEATURES,
    options: { experts: 3, expertSizes: [16, 8] },
  });
  dir = await mkdtemp(join(tmpdir(), "mtrank-safety-"));
  await saveTrainedModel(dir, model);
  await exportModelDir(dir, { int8: true });
}, 120_000);

function withValue(source: TrainedModel, name: string, index: number, value: number): TrainedModel {
  const weights = { ...source.weights };
  const w = weights[name]!;
  const values = new Float32Array(w.values);
  values[index] = value;
  weights[name] = { shape: w.shape, values };
  return { ...source, weights };
}

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

describe("non-finite weights", () => {
  it.each([
    ["expert_1/0/kernel", 5, Number.POSITIVE_INFINITY, "Infinity"],
    ["gate_click/bias", 0, Number.NEGATIVE_INFINITY, "-Infinity"],
    ["embedding", 17, Number.NaN, "NaN"],
  ])("refuses %s with a %s value, naming the parameter and the index", (name, index, value, shown) => {
    const bad = withValue(model, name, index, value);
    const escaped = name.replaceAll("/", "\\/");
    for (const weights of ["float32", "int8"] as const)
      expect(() => buildOnnx(bad, weights)).toThrow(
        new RegExp(`parameter "${escaped}" has a non-finite value \\(${shown}\\) at index ${index}`),
      );
  });

  it("export CLI: exits 1 with one line naming the weight, and writes no graph", async () => {
    const badDir = await mkdtemp(join(tmpdir(), "mtrank-safety-inf-"));
    await saveTrainedModel(badDir, withValue(model, "tower_purchase/0/kernel", 2, Number.POSITIVE_INFINITY));
    const result = spawnSync(
      "node_modules/.bin/tsx",
      ["trainer/cli/export.ts", "--model", badDir, "--int8"],
      {
        encoding: "utf8",
        timeout: 60_000,
      },
    );
    expect(result.status).toBe(1);
    expect(result.stderr.trim().split("\n")).toHaveLength(1);
    expect(result.stderr).toMatch(
      /^error: export: parameter "tower_purchase\/0\/kernel" has a non-finite value \(Infinity\) at index 2$/m,
    );
    for (const file of ["model.onnx", "model.int8.onnx", "manifest.json"])
      await expect(access(join(badDir, file))).rejects.toThrow();
  }, 60_000); // a tsx child process: seconds on a loaded machine
});

describe("loading a graph", () => {
  it("opens the exported float and int8 graphs", async () => {
    expect((await openServedModel(dir)).session.inputNames).toContain("ids");
    expect((await openServedModel(dir, true)).file).toBe("model.int8.onnx");
  });

  it("refuses a truncated model.onnx, naming the file and both sizes", async () => {
    const copy = await mkdtemp(join(tmpdir(), "mtrank-safety-trunc-"));
    await saveTrainedModel(copy, model);
    const { manifest } = await exportModelDir(copy);
    const bytes = await readFile(join(copy, "model.onnx"));
    await writeFile(join(copy, "model.onnx"), bytes.subarray(0, bytes.length - 100));
    await expect(openServedModel(copy)).rejects.toThrow(
      new RegExp(
        `--model: ${copy}/model\\.onnx: ${bytes.length - 100} bytes where the manifest lists ${manifest.files["model.onnx"]!.bytes} \\(truncated`,
      ),
    );
  });

  it("refuses a model.int8.onnx with one flipped byte (same size, wrong sha256)", async () => {
    const copy = await mkdtemp(join(tmpdir(), "mtrank-safety-flip-"));
    await saveTrainedModel(copy, model);
    await exportModelDir(copy, { int8: true });
    const bytes = await readFile(join(copy, "model.int8.onnx"));
    bytes[Math.floor(bytes.length / 2)]! ^= 0xff;
    await writeFile(join(copy, "model.int8.onnx"), bytes);
    await expect(openServedModel(copy, true)).rejects.toThrow(
      /model\.int8\.onnx: sha256 [0-9a-f]{16}… does not match the manifest's [0-9a-f]{16}… \(corrupt or replaced file\)/,
    );
  });

  it("wraps onnxruntime's own failure when the bytes match the manifest but are no graph", async () => {
    const good = await readFile(join(dir, "model.onnx"));
    for (const bytes of [
      good.subarray(0, Math.floor(good.length / 3)),
      new TextEncoder().encode("not onnx"),
    ]) {
      await expect(
        openVerifiedSession(bytes, { bytes: bytes.length, sha256: sha256(bytes) }, "x.onnx"),
      ).rejects.toThrow(/^x\.onnx: onnxruntime cannot load the graph: \S/);
    }
  });
});

describe("reproducible bytes", () => {
  it("gives identical float and int8 files from the same weights loaded twice, different ones from other weights", async () => {
    const [a, b] = await Promise.all([loadTrainedModel(dir), loadTrainedModel(dir)]);
    for (const weights of ["float32", "int8"] as const) {
      const first = buildOnnx(a, weights).bytes;
      const second = buildOnnx(b, weights).bytes;
      expect(sha256(second)).toBe(sha256(first));
      const changed = buildOnnx(withValue(a, "expert_0/0/kernel", 0, 0.5), weights).bytes;
      expect(sha256(changed)).not.toBe(sha256(first));
    }
  });

  it("writes byte-identical files and manifest when a copy of the weights is exported elsewhere", async () => {
    const copy = await mkdtemp(join(tmpdir(), "mtrank-safety-copy-"));
    await saveTrainedModel(copy, await loadTrainedModel(dir));
    await exportModelDir(copy, { int8: true });
    for (const file of ["model.onnx", "model.int8.onnx", "manifest.json"])
      expect(sha256(await readFile(join(copy, file)))).toBe(sha256(await readFile(join(dir, file))));
  });
});
