/** The exported ONNX graph, run by onnxruntime, gives the trained tfjs network's outputs. */
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { beforeAll, describe, expect, it } from "vitest";
import { compileEncoder } from "../../shared/encoder/encode.ts";
import type { ModelManifest } from "../../shared/manifest.ts";
import { loadTrainedModel, saveTrainedModel } from "../../trainer/artifact/trained-model.ts";
import { maxAbsDiff } from "../../trainer/core/metrics.ts";
import { loadDataset } from "../../trainer/data/load-dataset.ts";
import { readSpecFile } from "../../trainer/data/read-spec.ts";
import { exportModelDir } from "../../trainer/export/export-model.ts";
import { openSession, runHeads } from "../../trainer/export/onnx-session.ts";
import { paramsFromWeights } from "../../trainer/models/network.ts";
import { ARCHITECTURES } from "../../trainer/models/registry.ts";
import { DEFAULT_ARCH_OPTIONS } from "../../trainer/models/types.ts";
import { selectBackend } from "../../trainer/train/backend.ts";
import { predictNetwork } from "../../trainer/train/train-network.ts";
import { runTraining } from "../../trainer/workflows/train-and-report.ts";

const DATA = "fixtures/real-logs/ali_ccp_sample.csv";
const SPEC = "fixtures/specs/ali_ccp.json";

beforeAll(async () => {
  await selectBackend(); // the backend training picks by default (wasm here), so parity covers it
});

describe.each(Object.keys(ARCHITECTURES))("tfjs <-> ONNX parity: %s", (arch) => {
  it("gives the same head outputs on every fixture row (max |dp| <= 1e-5)", async () => {
    const dir = await mkdtemp(join(tmpdir(), `mtrank-parity-${arch}-`));
    await runTraining({ data: DATA, spec: SPEC, arch, out: dir, epochs: 2, seed: 7 });
    await expectParity(dir);
  });
});

describe("tfjs <-> ONNX parity: cross layers (--cross)", () => {
  it("exports the low-rank cross network before the architecture, float32 and int8", async () => {
    const dir = await mkdtemp(join(tmpdir(), "mtrank-parity-cross-"));
    await runTraining({
      data: DATA,
      spec: SPEC,
      arch: "mmoe",
      out: dir,
      epochs: 2,
      seed: 7,
      options: { cross: 2, crossRank: 4 },
    });
    const { weights } = await loadTrainedModel(dir);
    expect(weights["cross_0/down/kernel"]?.shape).toEqual([weights["expert_0/0/kernel"]!.shape[0], 4]);
    // Training moved the up-projections off their zero start: the layers are not the identity.
    for (const l of [0, 1])
      expect(Math.max(...weights[`cross_${l}/up/kernel`]!.values.map(Math.abs))).toBeGreaterThan(1e-4);
    expect(weights["cross_2/up/kernel"]).toBeUndefined();
    await expectParity(dir);
    const int8 = await exportModelDir(dir, { int8: true });
    for (const d of Object.values(int8.manifest.quantization!.maxAbsDiff))
      expect(d).toBeLessThanOrEqual(0.02);
    await expect(exportModelDir(dir, { factorised: true })).rejects.toThrow(
      /--factorised: the model has stacked cross layers/,
    );
  });
});

describe.each(["mmoe", "esmm", "single"])("tfjs <-> ONNX parity: parallel cross layers, %s", (arch) => {
  it("adds the cross towers' logits the same way in both (float32)", async () => {
    const dir = await mkdtemp(join(tmpdir(), `mtrank-parity-parallel-${arch}-`));
    const options = { cross: 2, crossRank: 4, crossLayout: "parallel" as const };
    await runTraining({ data: DATA, spec: SPEC, arch, out: dir, epochs: 2, seed: 7, options });
    const { weights } = await loadTrainedModel(dir);
    // Training moved the towers' logit kernels off their zero start.
    const towers = Object.keys(weights).filter((n) => /cross_tower_[^/]+\/logit\/kernel$/.test(n));
    expect(towers.length).toBeGreaterThan(0);
    for (const name of towers)
      expect(Math.max(...weights[name]!.values.map(Math.abs)), name).toBeGreaterThan(1e-4);
    await expectParity(dir);
  });
});

describe("tfjs <-> ONNX parity: esmm in format 1's shared-bottom layout", () => {
  it("exports a bottom MLP shared by the tasks as the same product, and saves it as format 1", async () => {
    const dir = await mkdtemp(join(tmpdir(), "mtrank-parity-esmm-shared-bottom-"));
    // The default widths whatever the fixture's size (../../trainer/train/layer-widths.ts): the
    // product's outputs must vary across rows for the comparison to mean anything.
    await runTraining({
      data: DATA,
      spec: SPEC,
      arch: "shared-bottom",
      out: dir,
      epochs: 2,
      seed: 7,
      options: DEFAULT_ARCH_OPTIONS,
    });
    expect(await savedFormat(dir)).toBe("mtrank-trained/2");
    const trained = await loadTrainedModel(dir);
    await saveTrainedModel(dir, { ...trained, config: { ...trained.config, arch: "esmm" } });
    expect(await savedFormat(dir)).toBe("mtrank-trained/1");
    await expectParity(dir);
  });

  it("refuses a network.json that names format 2 but holds format 1's layout", async () => {
    const dir = await mkdtemp(join(tmpdir(), "mtrank-parity-esmm-mislabelled-"));
    await runTraining({ data: DATA, spec: SPEC, arch: "shared-bottom", out: dir, epochs: 1, seed: 7 });
    const trained = await loadTrainedModel(dir);
    await saveTrainedModel(dir, { ...trained, config: { ...trained.config, arch: "esmm" } });
    const path = join(dir, "training", "network.json");
    const file = JSON.parse(await readFile(path, "utf8")) as { format: string };
    await writeFile(path, JSON.stringify({ ...file, format: "mtrank-trained/2" }));
    await expect(loadTrainedModel(dir)).rejects.toThrow(/says format 2 but holds a format-1 layout/);
  });
});

async function savedFormat(dir: string): Promise<unknown> {
  return (JSON.parse(await readFile(join(dir, "training", "network.json"), "utf8")) as { format: unknown })
    .format;
}

async function expectParity(dir: string): Promise<void> {
  const { manifest, onnxBytes } = await exportModelDir(dir);

  const spec = await readSpecFile(SPEC);
  const data = await loadDataset(DATA, spec);
  // Repeat the fixture rows up to 1,000 so the batch is as large as a real request.
  const rows = Array.from({ length: 1000 }, (_, i) => data.rows[i % data.rows.length]!);
  const batch = compileEncoder(manifest.features).encodeRows(rows);

  const trained = await loadTrainedModel(dir);
  // Training calibrates binary heads by default: parity covers the calibrated outputs.
  for (const head of trained.config.heads)
    if (head.type === "binary") expect(head.calibration, head.name).toBeDefined();
  const params = paramsFromWeights(trained.weights);
  const expected = predictNetwork(params, trained.config, batch);
  tf.dispose(Object.values(params));
  const actual = await runHeads(await openSession(onnxBytes), manifest, batch);

  for (const head of manifest.heads) {
    const a = actual[head.name]!;
    const e = expected[head.name]!;
    expect(a.length).toBe(rows.length);
    expect(maxAbsDiff(a, e)).toBeLessThanOrEqual(1e-5);
    // The outputs must vary across rows, or the comparison proves nothing.
    expect(Math.max(...e) - Math.min(...e)).toBeGreaterThan(1e-4);
  }
}

describe("export", () => {
  it("writes a manifest whose file hash matches model.onnx and reproduces the same bytes", async () => {
    const dir = await mkdtemp(join(tmpdir(), "mtrank-export-"));
    await runTraining({ data: DATA, spec: SPEC, arch: "shared-bottom", out: dir, epochs: 1, seed: 3 });
    const first = await exportModelDir(dir);
    const second = await exportModelDir(dir);
    expect(Buffer.from(second.onnxBytes).equals(Buffer.from(first.onnxBytes))).toBe(true);
    const manifest = JSON.parse(await readFile(join(dir, "manifest.json"), "utf8")) as ModelManifest;
    const bytes = await readFile(join(dir, "model.onnx"));
    const { createHash } = await import("node:crypto");
    expect(manifest.files["model.onnx"]).toEqual({
      bytes: bytes.length,
      sha256: createHash("sha256").update(bytes).digest("hex"),
    });
    expect(manifest.heads.map((h) => h.name)).toEqual(["click", "purchase"]);
  });
});
