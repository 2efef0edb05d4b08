/**
 * Training on the WebGPU backend (Dawn, any adapter: CI runs it on Mesa's lavapipe) gives what
 * wasm gives from the same seed, and what it trains exports to the same ONNX graph and serves
 * the tfjs outputs. npm run test:gpu (vitest.gpu.config.ts); never part of `npm test`.
 *
 * Tolerances. Both backends compute in float32 but sum in different orders (GPU matmuls reduce
 * in workgroup tiles, XNNPACK in its own blocks, exp/log come from different math libraries), so
 * each op differs by a few ulps (~1e-7 relative). Training carries that forward: Adam divides each
 * gradient by its running RMS, so a difference in a gradient that is itself near zero can become a
 * difference of up to a whole step (lr) in that weight. Measured on lavapipe (Mesa 25.0) over the
 * MMoE's 30 steps at lr 0.002: weights within 6.3e-8, AUC and log loss within 1.5e-8. The bounds
 * below leave 1000x of room for other GPUs' arithmetic (fused multiply-adds, other reduction
 * orders), and are still 20x below one Adam step: a missing or wrong gradient moves weights by
 * ~lr = 2e-3 per step and losses by 1e-2 or more.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import onnxProto from "onnx-proto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compileEncoder } from "../../shared/encoder/encode.ts";
import { loadTrainedModel } from "../../trainer/artifact/trained-model.ts";
import { maxScaledDiff } from "../../trainer/core/metrics.ts";
import { loadDataset } from "../../trainer/data/load-dataset.ts";
import { readSpecFile } from "../../trainer/data/read-spec.ts";
import { exportModelDir } from "../../trainer/export/export-model.ts";
import { openSession, runHeads } from "../../trainer/export/onnx-session.ts";
import { initNetwork, paramsFromWeights } from "../../trainer/models/network.ts";
import { ARCHITECTURES } from "../../trainer/models/registry.ts";
import { writeSimulation } from "../../trainer/simulate/simulator.ts";
import { selectBackend } from "../../trainer/train/backend.ts";
import { predictNetwork, trainNetworkAsync } from "../../trainer/train/train-network.ts";
import { runTraining, type TrainSummary } from "../../trainer/workflows/train-and-report.ts";
import { SMALL_WORLD } from "../fixtures/small-world.ts";
import { clickBuyConfig, clickBuyData } from "../trainer/click-buy-data.ts";

/** Max |Δ| of any weight after training (see the tolerances above). */
const WEIGHT_TOLERANCE = 1e-4;
/** Max |Δ| of a training or validation loss, and of a validation AUC. */
const METRIC_TOLERANCE = 1e-4;
/**
 * tfjs forward vs onnxruntime on the exported graph, as test/export/parity.test.ts: absolute for
 * probabilities, relative for outputs past 1 (the simulator's dwell head, in seconds).
 */
const PARITY_TOLERANCE = 1e-5;

const BACKENDS = ["webgpu", "wasm"] as const;
type Backend = (typeof BACKENDS)[number];

let work: string;
let data: string;
let spec: string;
const trained: Partial<Record<Backend, { dir: string; summary: TrainSummary }>> = {};

/** A small MMoE: 4 experts of [32, 16], towers [16]; 4,000 rows, batch 256, 2 epochs (30 steps), one network, uncalibrated. */
function train(backend: Backend, arch: string, dir: string, epochs = 2): Promise<TrainSummary> {
  return runTraining({
    data,
    spec,
    arch,
    out: dir,
    epochs,
    batchSize: 256,
    seed: 7,
    backend,
    options: { experts: 4, expertSizes: [32, 16], tower: [16] },
    // Two epochs on 4,000 rows learn little, and Platt scaling flattens a head whose validation
    // AUC is near 0.5 to a constant, which would leave the parity check nothing to compare.
    // Calibration's own parity is test/export/parity.test.ts's.
    calibration: "none",
    // One network: the parity of one run's steps is what this compares (five fold networks
    // would take five times as long on lavapipe).
    averageFolds: 1,
  });
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "mtrank-gpu-"));
  const sim = writeSimulation(work, { ...SMALL_WORLD, requests: 400, seed: 11 });
  data = sim.dataPath;
  spec = sim.specPath;
  for (const backend of BACKENDS) {
    const dir = join(work, `mmoe-${backend}`);
    const summary = await train(backend, "mmoe", dir);
    // --backend webgpu falls back to wasm when it cannot start: that must fail here, not pass.
    expect(summary.backend).toBe(backend);
    trained[backend] = { dir, summary };
  }
});

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

describe("webgpu against wasm, same seed", () => {
  it(`trains the same MMoE weights (max |dw| <= ${WEIGHT_TOLERANCE})`, async () => {
    const gpu = await loadTrainedModel(trained.webgpu!.dir);
    const cpu = await loadTrainedModel(trained.wasm!.dir);
    expect(Object.keys(gpu.weights).sort()).toEqual(Object.keys(cpu.weights).sort());
    let worst = { name: "", diff: 0 };
    for (const [name, w] of Object.entries(gpu.weights)) {
      const other = cpu.weights[name]!;
      expect(w.shape, name).toEqual(other.shape);
      const diff = maxAbsDiff(w.values, other.values);
      if (diff > worst.diff) worst = { name, diff };
    }
    console.log(`webgpu vs wasm: max |dw| ${worst.diff.toExponential(2)} (${worst.name})`);
    expect(worst.diff).toBeLessThanOrEqual(WEIGHT_TOLERANCE);
    // Training moved the weights by far more than the tolerance, or the comparison proves nothing.
    const start = initNetwork(cpu.config, 7);
    let moved = 0;
    for (const [name, p] of Object.entries(start))
      moved = Math.max(moved, maxAbsDiff(p.dataSync(), cpu.weights[name]!.values));
    tf.dispose(Object.values(start));
    expect(moved).toBeGreaterThan(100 * WEIGHT_TOLERANCE);
  });

  it(`gives the same losses and validation metrics (max |d| <= ${METRIC_TOLERANCE}; an AUC within four pairs)`, () => {
    const gpu = trained.webgpu!.summary;
    const cpu = trained.wasm!.summary;
    expect(gpu.bestEpoch).toBe(cpu.bestEpoch);
    const diffs: number[] = [];
    for (const [head, m] of Object.entries(cpu.validation)) {
      const g = gpu.validation[head]!;
      // Binary heads: AUC and log loss; regression heads: mse, relative to its size.
      const pairs: [string, number | undefined, number | undefined][] =
        m.mse !== undefined
          ? [["mse", g.mse! / m.mse, 1]]
          : [
              ["auc", g.auc, m.auc],
              ["logloss", g.logloss, m.logloss],
            ];
      // An AUC moves in steps of one pair, 1/(positives·negatives): on a sparse head (~30 positives)
      // one step is ~4e-5, so two models within WEIGHT_TOLERANCE may order a few near-tied pairs
      // apart. The bound is METRIC_TOLERANCE or four such pairs, whichever is larger.
      const positives = Math.round((m.positiveRate ?? 0) * m.count);
      const pairStep = 1 / Math.max(1, positives * (m.count - positives));
      for (const [metric, a, b] of pairs) {
        expect(Number.isFinite(a) && Number.isFinite(b), `${head} ${metric}`).toBe(true);
        const diff = Math.abs(a! - b!);
        diffs.push(diff);
        const bound = metric === "auc" ? Math.max(METRIC_TOLERANCE, 4 * pairStep) : METRIC_TOLERANCE;
        expect(diff, `${head} ${metric}`).toBeLessThanOrEqual(bound);
      }
    }
    console.log(`webgpu vs wasm: max |d metric| ${Math.max(...diffs).toExponential(2)}`);
  });
});

describe("webgpu-trained weights export and serve as wasm-trained ones", () => {
  it("export to the same ONNX graph: same nodes, inputs, outputs and initializer shapes, same size", async () => {
    const gpu = await exportModelDir(trained.webgpu!.dir);
    const cpu = await exportModelDir(trained.wasm!.dir);
    expect(gpu.onnxBytes.length).toBe(cpu.onnxBytes.length);
    expect(structure(gpu.onnxBytes)).toEqual(structure(cpu.onnxBytes));
    expect(gpu.manifest.inputs).toEqual(cpu.manifest.inputs);
    expect(gpu.manifest.heads.map((h) => [h.name, h.output])).toEqual(
      cpu.manifest.heads.map((h) => [h.name, h.output]),
    );
  });

  it.each(
    BACKENDS,
  )(`onnxruntime on the exported graph gives the tfjs forward on %s (|dp| <= ${PARITY_TOLERANCE}·max(1, |p|))`, async (forward) => {
    expect(await selectBackend(forward)).toBe(forward);
    await expectParity(trained.webgpu!.dir);
  });
});

describe.each(Object.keys(ARCHITECTURES))("architecture %s on webgpu", (arch) => {
  it(`trains one epoch as on wasm (losses within ${METRIC_TOLERANCE})`, async () => {
    const losses: Record<string, number[]> = {};
    for (const backend of BACKENDS) {
      const summary = await train(backend, arch, join(work, `${arch}-${backend}`), 1);
      expect(summary.backend).toBe(backend);
      losses[backend] = Object.values(summary.validation).map((m) => m.logloss ?? m.mse ?? Number.NaN);
    }
    expect(losses.webgpu!.every(Number.isFinite)).toBe(true);
    expect(maxAbsDiff(losses.webgpu!, losses.wasm!)).toBeLessThanOrEqual(METRIC_TOLERANCE);
  });
});

describe("webgpu backend internals", () => {
  it("trains 300 steps in one run with flat memory (Dawn recycles descriptor sets in event-loop turns)", async () => {
    expect(await selectBackend("webgpu")).toBe("webgpu");
    // A loop that never yields grew ~5 MB a step here and crashed lavapipe after ~70 steps.
    const config = clickBuyConfig("mmoe", { experts: 4, expertSizes: [32, 16], tower: [16] });
    const rss: number[] = [];
    const result = await trainNetworkAsync(config, clickBuyData(4800, 1), clickBuyData(300, 2), {
      epochs: 4,
      batchSize: 64,
      learningRate: 0.01,
      patience: 10,
      seed: 3,
      taskWeights: { click: 1, buy: 1 },
      onBatch: (p) => {
        if (p.done % 25 === 0) rss.push(process.memoryUsage().rss);
      },
    });
    expect(result.history).toHaveLength(4);
    expect(rss.length).toBe(12);
    const growth = (rss.at(-1)! - rss[1]!) / 1e6;
    console.log(`webgpu, 300 steps: resident memory ${growth.toFixed(0)} MB from step 50 to the last`);
    // Flat is tens of MB (18, 81, 161 in three runs: the allocators' caches and the epochs'
    // validation passes); the loop that never yields grows ~5 MB a step, 1,250 MB over these 250.
    expect(growth).toBeLessThan(500);
    tf.dispose(Object.values(result.params));
  });

  it("reads synchronously what it reads asynchronously (dataSync without OffscreenCanvas)", async () => {
    expect(await selectBackend("webgpu")).toBe("webgpu");
    const x = tf.tidy(() => tf.range(0, 300_000, 1, "float32").mul(0.5).add(1));
    const sync = Float32Array.from(x.dataSync() as Float32Array);
    const y = x.mul(2);
    const async = (await y.data()) as Float32Array;
    expect(sync[299_999]).toBe(0.5 * 299_999 + 1);
    expect(async[299_999]).toBe(2 * sync[299_999]!);
    tf.dispose([x, y]);
  });

  it("sums more tensors in one AddN than a shader stage can bind (the gradient of a shared input)", async () => {
    expect(await selectBackend("webgpu")).toBe("webgpu");
    const parts = Array.from({ length: 40 }, (_, i) => tf.fill([64, 8], i + 1));
    const sum = tf.tidy(() => tf.addN(parts.map((p) => p.mul(1))));
    const values = sum.dataSync();
    expect(values[0]).toBe((40 * 41) / 2);
    expect(values[values.length - 1]).toBe((40 * 41) / 2);
    tf.dispose([...parts, sum]);
  });
});

/** The graph with the initializers' values left out: what must not depend on the backend. */
function structure(bytes: Uint8Array): unknown {
  const graph = onnxProto.onnx.ModelProto.decode(bytes).graph!;
  return {
    nodes: (graph.node ?? []).map((n) => ({ op: n.opType, inputs: n.input, outputs: n.output })),
    inputs: (graph.input ?? []).map((i) => i.name),
    outputs: (graph.output ?? []).map((o) => o.name),
    initializers: (graph.initializer ?? []).map((t) => ({
      name: t.name,
      dims: (t.dims ?? []).map(Number),
      type: t.dataType,
    })),
  };
}

/** test/export/parity.test.ts's check, on the simulated rows: ORT vs the tfjs forward. */
async function expectParity(dir: string): Promise<void> {
  const { manifest, onnxBytes } = await exportModelDir(dir);
  const parsed = await loadDataset(data, await readSpecFile(spec));
  const rows = parsed.rows.slice(0, 1000);
  const batch = compileEncoder(manifest.features).encodeRows(rows);
  const model = await loadTrainedModel(dir);
  const params = paramsFromWeights(model.weights);
  const expected = predictNetwork(params, model.config, batch);
  tf.dispose(Object.values(params));
  const actual = await runHeads(await openSession(onnxBytes), manifest, batch);
  for (const head of manifest.heads) {
    const a = actual[head.name]!;
    const e = expected[head.name]!;
    expect(a.length).toBe(rows.length);
    // Relative past 1: a regression head's outputs are in label units (float32 keeps ~7 digits).
    expect(maxScaledDiff(e, a), head.name).toBeLessThanOrEqual(PARITY_TOLERANCE);
    // The outputs must vary across rows, or the comparison proves nothing.
    expect(Math.max(...e) - Math.min(...e)).toBeGreaterThan(1e-4);
  }
}
