/**
 * npm run bench:train: training throughput (samples/s) and peak memory per backend and per
 * vocabulary size, on a synthetic encoded data set shaped like the reference configuration:
 * 12 categorical features of 10k ids each (one shared table of 120k rows), embedding dim 8,
 * 28 numeric features, two binary heads, batch 1024, Adam (lazy Adam on the table unless noted),
 * with the trainer's default L2 penalties (DEFAULT_L2; one row per architecture without them, to
 * show what the penalty costs). The reference has no cross layers; one row per architecture adds
 * the trainer's default two (--cross 2), to show what they cost.
 *
 * Every configuration runs in its own child process (clean memory peaks, a fresh backend), times
 * the training loop's own step (createNetworkOptimizer().step, as trainNetwork runs it) after
 * warm-up steps, and reports samples/s, rss and heapUsed peaks (sampled after every step; the
 * wasm heap counts in rss). Writes out/bench/train-speed.json and prints a table.
 *
 * "workers": the reference MMoE (wasm, lazy Adam) with --workers 1 and 2 (every batch split
 * with a worker thread), alternated over rounds because other processes share this host's cores;
 * cpu ms/step (all threads) next to wall ms/step shows whether the second core was free.
 *
 * With the workers group, the wasm bound: one thread's fastest matmul throughput (GFLOP/s) on
 * the reference MMoE's widest product, times the cores, over the reference MMoE's training FLOPs
 * a sample; and how close the best measured samples/s comes to it.
 *
 * "e2e" (./train-e2e.ts): the census-sized run, 80k rows x 40 columns from CSV to exported
 * artifact with `mtrank train --arch mmoe` and no other flag, against the tuned tree anchor
 * (XGBoost) on the same files in the same run: seconds, their ratio, and both test AUCs.
 *
 * "gpu" (`--backend webgpu`, or another backend by name): the reference MMoE on that backend and on
 * wasm in the same run, at batch 1k, 4k and 16k (lazy Adam, default L2), samples/s and the ratio;
 * the adapter webgpu ran on is in the report. On a software adapter (lavapipe) the figures show
 * that it runs, not how fast a GPU is.
 *
 *   npm run bench:train [-- --quick]     (--quick: fewer steps, for a smoke run)
 *   npm run bench:train -- --group workers   (one group only: backends, vocabulary, workers, gpu or e2e)
 *   npm run bench:train -- --backend webgpu  (the gpu group: webgpu vs wasm by batch size)
 */
import { spawnSync } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { cpus } from "node:os";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import * as tf from "@tensorflow/tfjs";
import { initNetwork, type NetworkConfig } from "../trainer/models/network.ts";
import { ARCHITECTURES } from "../trainer/models/registry.ts";
import { DEFAULT_ARCH_OPTIONS } from "../trainer/models/types.ts";
import { selectBackend } from "../trainer/train/backend.ts";
import { DEFAULT_L2 } from "../trainer/train/batch-gradients.ts";
import {
  createNetworkOptimizer,
  type EmbeddingUpdates,
  type LabelledBatch,
} from "../trainer/train/train-network.ts";
import { adapterLine, findAdapter } from "../trainer/train/webgpu-backend.ts";
import { censusSizedLines, censusSizedRun } from "./train-e2e.ts";

const FEATURES = 12;
const EMBEDDING_DIM = 8;
const NUMERIC = 28;
const BATCH = 1024;
/** The gpu group's batch sizes: where a GPU gains over wasm, and how it scales. */
const GPU_BATCHES = [1024, 4096, 16384];
const REFERENCE_VOCAB = FEATURES * 10_000;
/**
 * The reference network sizes: MMoE with 8 experts of [128, 64] and towers [32] (not the
 * trainer's default 4 × [64, 32]); shared-bottom keeps the defaults ([128, 64] bottom). No cross
 * layers unless a job asks for them.
 */
const REFERENCE_OPTIONS = {
  ...DEFAULT_ARCH_OPTIONS,
  experts: 8,
  expertSizes: [128, 64],
  tower: [32],
  cross: 0,
};
const OUT = "out/bench/train-speed.json";

interface Job {
  group: "backends" | "vocabulary" | "workers" | "gpu";
  arch: string;
  backend: string;
  embeddingUpdates: EmbeddingUpdates;
  /** Threads per step (TrainOptions.workers). */
  workers: number;
  /** The trainer's default L2 penalties, or none. */
  l2: "default" | "off";
  /** Cross layers before the architecture (--cross). */
  cross: number;
  /** The workers group alternates 1 and 2 over rounds. */
  round?: number;
  vocabSize: number;
  /** Rows per step (BATCH unless the gpu group sets it). */
  batch?: number;
  warmupSteps: number;
  minSteps: number;
  maxSteps: number;
  /** Stop timing after this many seconds once minSteps are done. */
  seconds: number;
}

interface Result extends Job {
  backendUsed: string;
  /** The WebGPU adapter (vendor, architecture, device, description) when backendUsed is webgpu. */
  adapter?: string;
  /** Distinct table rows per batch (what a lazy Adam step updates). */
  uniqueRowsPerBatch: number;
  steps: number;
  samplesPerSecond: number;
  msPerStep: number;
  /** Process CPU time (all threads) per timed step. */
  cpuMsPerStep: number;
  /** Time to copy the lazy-Adam table into its tf.Variable (once per epoch, before validation). */
  syncMs: number;
  rssPeakMB: number;
  heapUsedPeakMB: number;
  rssBeforeMB: number;
}

// ---- Child: one configuration -------------------------------------------------------------

async function runJob(job: Job): Promise<Result> {
  const backendUsed = await selectBackend(job.backend);
  const batch = job.batch ?? BATCH;
  const found = backendUsed === "webgpu" ? await findAdapter() : undefined;
  const adapter = found === undefined || typeof found === "string" ? undefined : adapterLine(found);
  const config: NetworkConfig = {
    arch: job.arch,
    options: { ...REFERENCE_OPTIONS, cross: job.cross },
    embeddingDim: EMBEDDING_DIM,
    denseSize: NUMERIC,
    idSlots: FEATURES,
    vocabSize: job.vocabSize,
    heads: [
      { name: "click", type: "binary" },
      { name: "purchase", type: "binary" },
    ],
  };
  const data = syntheticData(batch * 8, job.vocabSize, 1);
  const params = initNetwork(config, 42);
  const uniqueRowsPerBatch = new Set(data.ids.subarray(0, batch * FEATURES)).size;
  const optimizer = createNetworkOptimizer(params, config, {
    learningRate: 0.002,
    taskWeights: {},
    embeddingUpdates: job.embeddingUpdates,
    workers: job.workers,
    l2: job.l2 === "off" ? 0 : DEFAULT_L2,
  });
  const batchIdx = (step: number) => {
    const start = (step % 8) * batch;
    return Int32Array.from({ length: batch }, (_, i) => start + i);
  };
  const mb = (bytes: number) => Math.round(bytes / 2 ** 20);
  const rssBefore = process.memoryUsage().rss;
  let rssPeak = rssBefore;
  let heapPeak = process.memoryUsage().heapUsed;
  const sample = () => {
    const m = process.memoryUsage();
    rssPeak = Math.max(rssPeak, m.rss);
    heapPeak = Math.max(heapPeak, m.heapUsed);
  };
  let step = 0;
  for (; step < job.warmupSteps; step++) {
    optimizer.step(data, batchIdx(step));
    sample();
  }
  const started = performance.now();
  const cpuStarted = process.cpuUsage();
  let steps = 0;
  while (
    steps < job.minSteps ||
    (steps < job.maxSteps && (performance.now() - started) / 1000 < job.seconds)
  ) {
    const loss = optimizer.step(data, batchIdx(step++)).total;
    if (!Number.isFinite(loss)) throw new Error(`bench: loss ${loss} at step ${step}`);
    steps++;
    sample();
  }
  // The last step's dense update may still be queued on a GPU: wait for it inside the timing.
  const smallest = Object.values(params).reduce((a, b) => (b.size < a.size ? b : a));
  smallest.dataSync();
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuStarted);
  const syncStarted = performance.now();
  optimizer.sync();
  const syncMs = performance.now() - syncStarted;
  sample();
  optimizer.dispose();
  tf.dispose(Object.values(params));
  return {
    ...job,
    backendUsed,
    ...(adapter !== undefined ? { adapter } : {}),
    uniqueRowsPerBatch,
    steps,
    samplesPerSecond: Math.round((steps * batch) / seconds),
    msPerStep: Math.round((seconds * 1000) / steps),
    cpuMsPerStep: Math.round((cpu.user + cpu.system) / 1000 / steps),
    syncMs: Math.round(syncMs * 10) / 10,
    rssPeakMB: mb(rssPeak),
    heapUsedPeakMB: mb(heapPeak),
    rssBeforeMB: mb(rssBefore),
  };
}

/** Uniform random ids (the worst case for sparse updates: the most distinct rows per batch). */
function syntheticData(rows: number, vocabSize: number, seed: number): LabelledBatch {
  let s = seed >>> 0;
  const random = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const perFeature = Math.floor(vocabSize / FEATURES);
  const dense = Float32Array.from({ length: rows * NUMERIC }, () => random() * 2 - 1);
  const ids = Int32Array.from(
    { length: rows * FEATURES },
    (_, i) => (i % FEATURES) * perFeature + Math.floor(random() * perFeature),
  );
  const click = Float32Array.from({ length: rows }, (_, r) => (dense[r * NUMERIC]! + random() > 0.9 ? 1 : 0));
  const purchase = Float32Array.from(click, (c) => (c === 1 && random() < 0.2 ? 1 : 0));
  return { rows, dense, ids, labels: { click, purchase } };
}

// ---- Parent: every configuration, one child each ------------------------------------------

/**
 * The gpu group: the reference MMoE on `backend` and on wasm at each batch size, alternated so that
 * both see the same host load. One warm-up step compiles the GPU's shaders for that shape.
 */
function gpuJobs(backend: string, quick: boolean): Job[] {
  const timing = quick
    ? { warmupSteps: 1, minSteps: 1, maxSteps: 2, seconds: 0.5 }
    : { warmupSteps: 1, minSteps: 3, maxSteps: 40, seconds: 6 };
  return GPU_BATCHES.flatMap((batch) =>
    [backend, "wasm"].map(
      (b): Job => ({
        group: "gpu",
        arch: "mmoe",
        backend: b,
        embeddingUpdates: "sparse",
        workers: 1,
        l2: "default",
        cross: 0,
        vocabSize: REFERENCE_VOCAB,
        batch,
        ...timing,
      }),
    ),
  );
}

function jobs(quick: boolean, gpuBackend: string): Job[] {
  const timing = quick
    ? { warmupSteps: 1, minSteps: 1, maxSteps: 2, seconds: 0.5 }
    : { warmupSteps: 2, minSteps: 3, maxSteps: 40, seconds: 4 };
  const archs = ["shared-bottom", "mmoe"].filter((a) => a in ARCHITECTURES);
  const list: Job[] = [];
  for (const arch of archs) {
    for (const [backend, embeddingUpdates] of [
      ["cpu", "dense"],
      ["cpu", "sparse"],
      ["wasm", "dense"],
      ["wasm", "sparse"],
    ] as const) {
      list.push({
        group: "backends",
        arch,
        backend,
        embeddingUpdates,
        workers: 1,
        l2: "default",
        cross: 0,
        vocabSize: REFERENCE_VOCAB,
        ...timing,
      });
    }
    for (const [l2, cross] of [
      ["off", 0],
      ["default", DEFAULT_ARCH_OPTIONS.cross],
    ] as const) {
      list.push({
        group: "backends",
        arch,
        backend: "wasm",
        embeddingUpdates: "sparse",
        workers: 1,
        l2,
        cross,
        vocabSize: REFERENCE_VOCAB,
        ...timing,
      });
    }
  }
  for (const vocabSize of [1_000, 100_000, 1_000_000]) {
    for (const embeddingUpdates of ["sparse", "dense"] as const) {
      list.push({
        group: "vocabulary",
        arch: "shared-bottom",
        backend: "wasm",
        embeddingUpdates,
        workers: 1,
        l2: "default",
        cross: 0,
        vocabSize,
        ...timing,
      });
    }
  }
  // Enough steps even with --quick: the two settings differ by less than the noise of a few steps.
  const parallelTiming = quick
    ? { warmupSteps: 3, minSteps: 10, maxSteps: 40, seconds: 2 }
    : { warmupSteps: 3, minSteps: 10, maxSteps: 100, seconds: 6 };
  for (let round = 1; round <= (quick ? 2 : 3); round++) {
    for (const workers of [1, 2]) {
      list.push({
        group: "workers",
        arch: "mmoe",
        backend: "wasm",
        embeddingUpdates: "sparse",
        workers,
        l2: "default",
        cross: 0,
        round,
        vocabSize: REFERENCE_VOCAB,
        ...parallelTiming,
      });
    }
  }
  return [...list, ...gpuJobs(gpuBackend, quick)];
}

function runChild(job: Job): Result {
  const script = fileURLToPath(import.meta.url);
  const child = spawnSync(process.execPath, [...process.execArgv, script, "--job", JSON.stringify(job)], {
    encoding: "utf8",
    maxBuffer: 16 * 2 ** 20,
  });
  const line = child.stdout.split("\n").find((l) => l.startsWith("RESULT "));
  if (child.status !== 0 || !line) {
    throw new Error(`bench: ${job.arch}/${job.backend}/${job.embeddingUpdates} failed:\n${child.stderr}`);
  }
  return JSON.parse(line.slice("RESULT ".length)) as Result;
}

function pad(values: (string | number)[], widths: number[]): string {
  return values.map((v, i) => String(v).padEnd(widths[i]!)).join(" ");
}

async function main(): Promise<void> {
  const quick = process.argv.includes("--quick");
  const started = performance.now();
  // The backend auto-selection would pick on this host ("best").
  const best = await selectBackend("auto");
  const groupArg = process.argv.indexOf("--group");
  const backendArg = process.argv.indexOf("--backend");
  // --backend NAME alone runs the gpu group for that backend; without it the group tries webgpu.
  const gpuBackend = backendArg >= 0 ? process.argv[backendArg + 1]! : "webgpu";
  const group = groupArg >= 0 ? process.argv[groupArg + 1] : backendArg >= 0 ? "gpu" : undefined;
  // A full run adds the gpu group only where auto found a GPU (never on a software adapter).
  const list = jobs(quick, gpuBackend).filter((j) =>
    group === undefined ? j.group !== "gpu" || best === "webgpu" : j.group === group,
  );
  const e2e = group === undefined || group === "e2e";
  if (list.length === 0 && !e2e)
    throw new Error(`--group: no group "${group}" (backends, vocabulary, workers, gpu, e2e)`);
  if (best !== "wasm" && best !== "cpu") {
    for (const arch of new Set(list.map((j) => j.arch))) {
      const template = list.find((j) => j.arch === arch && j.group === "backends");
      if (template) list.push({ ...template, backend: best, embeddingUpdates: "sparse" });
    }
  }
  const results: Result[] = [];
  for (const job of list) {
    const r = runChild(job);
    results.push(r);
    console.error(
      `  ${r.arch} ${r.backendUsed} ${r.embeddingUpdates} L2 ${r.l2} cross ${r.cross} V=${r.vocabSize} workers ${r.workers} batch ${r.batch ?? BATCH}: ${r.samplesPerSecond} samples/s (${r.steps} steps)`,
    );
  }

  const baseline = (arch: string) =>
    results.find(
      (r) =>
        r.group === "backends" &&
        r.arch === arch &&
        r.backend === "cpu" &&
        r.embeddingUpdates === "dense" &&
        r.l2 === "default" &&
        r.cross === 0,
    );
  const rows = results
    .filter((r) => r.group === "backends")
    .map((r) => ({ ...r, vsCpu: r.samplesPerSecond / (baseline(r.arch)?.samplesPerSecond ?? Number.NaN) }));
  const parallel = workersSummary(results.filter((r) => r.group === "workers"));
  const gpu = gpuSummary(results.filter((r) => r.group === "gpu"));
  // The bound is the wasm backend's; on a host where auto picks another backend it does not apply.
  const peak = best === "wasm" && (group === undefined || group === "workers") ? wasmPeak(quick) : undefined;
  const censusSized = e2e ? await censusSizedRun("out/bench/train-e2e", quick) : undefined;
  const report = {
    createdAt: new Date().toISOString(),
    host: { cpus: cpus().length, node: process.version, tfjs: tf.version.tfjs },
    setup: {
      features: FEATURES,
      idsPerFeature: REFERENCE_VOCAB / FEATURES,
      embeddingDim: EMBEDDING_DIM,
      numeric: NUMERIC,
      batch: BATCH,
      heads: ["click", "purchase"],
      archOptions: REFERENCE_OPTIONS, // each architecture reads its own fields
      l2: DEFAULT_L2,
      ids: "uniform random per feature (worst case for sparse updates)",
      baseline: "cpu backend, dense Adam on the table (the trainer before lazy Adam)",
      best,
    },
    backends: rows,
    vocabulary: results.filter((r) => r.group === "vocabulary"),
    workers: parallel,
    gpu: gpu,
    ...(peak ? { wasmPeak: peak } : {}),
    ...(censusSized ? { censusSized } : {}),
    seconds: Math.round((performance.now() - started) / 1000),
  };
  // One group alone goes to its own file, so it does not replace the full report.
  const out = group === undefined ? OUT : OUT.replace(".json", `-${group}.json`);
  await mkdir(dirname(out), { recursive: true });
  await writeFile(out, `${JSON.stringify(report, null, 1)}\n`);

  const w = [15, 8, 8, 8, 6, 10, 8, 9, 9];
  if (rows.length > 0) {
    console.log(
      `\ntraining throughput, batch ${BATCH}, ${FEATURES}x${REFERENCE_VOCAB / FEATURES} ids, best backend here: ${best}`,
    );
    console.log(
      pad(["arch", "backend", "table", "L2", "cross", "samples/s", "x cpu", "rss MB", "heap MB"], w),
    );
    for (const r of rows) {
      console.log(
        pad(
          [
            r.arch,
            r.backendUsed,
            r.embeddingUpdates,
            r.l2,
            r.cross,
            r.samplesPerSecond,
            `${r.vsCpu.toFixed(1)}x`,
            r.rssPeakMB,
            r.heapUsedPeakMB,
          ],
          w,
        ),
      );
    }
  }
  if (report.vocabulary.length > 0) {
    console.log(`\nvocabulary size (shared-bottom, wasm): samples/s, lazy Adam vs dense Adam on the table`);
    const v = [10, 12, 10, 10, 10, 10, 10];
    console.log(pad(["rows", "rows/batch", "lazy", "dense", "lazy rss", "dense rss", "sync ms"], v));
    for (const size of [...new Set(report.vocabulary.map((r) => r.vocabSize))]) {
      const lazy = report.vocabulary.find((r) => r.vocabSize === size && r.embeddingUpdates === "sparse");
      const dense = report.vocabulary.find((r) => r.vocabSize === size && r.embeddingUpdates === "dense");
      console.log(
        pad(
          [
            size,
            lazy?.uniqueRowsPerBatch ?? "-",
            lazy?.samplesPerSecond ?? "-",
            dense?.samplesPerSecond ?? "-",
            lazy?.rssPeakMB ?? "-",
            dense?.rssPeakMB ?? "-",
            lazy?.syncMs ?? "-",
          ],
          v,
        ),
      );
    }
  }
  if (parallel.rounds.length > 0) {
    console.log(`\ndata-parallel (mmoe, wasm, lazy Adam, batch ${BATCH}): --workers 1 vs 2, alternated`);
    const p = [7, 10, 10, 12, 10, 12];
    console.log(pad(["round", "1: sam/s", "2: sam/s", "ratio 2/1", "1: cpu/ms", "2: cpu/ms"], p));
    for (const r of parallel.rounds) {
      console.log(
        pad(
          [
            r.round,
            r.one,
            r.two,
            `${r.ratio.toFixed(2)}x`,
            r.cpuPerWallOne.toFixed(2),
            r.cpuPerWallTwo.toFixed(2),
          ],
          p,
        ),
      );
    }
    console.log(
      `median ratio ${parallel.medianRatio.toFixed(2)}x (cpu/ms: CPU time of all threads per wall ms; ~2 means both cores worked)`,
    );
  }
  if (peak) {
    const best = Math.max(...parallel.rounds.map((r) => Math.max(r.one, r.two)), 0);
    const bound = (peak.gflops * 1e9 * cpus().length) / peak.trainingFlopsPerSample;
    console.log(
      `
wasm bound: one-thread matmul ${peak.shape} at ${peak.gflops.toFixed(1)} GFLOP/s (the project's SIMD kernel ${peak.kernelGflops.toFixed(1)}, XNNPACK ${peak.xnnpackGflops.toFixed(1)}); the reference MMoE trains at ${(peak.trainingFlopsPerSample / 1e6).toFixed(2)} MFLOP a sample (6 x its ${peak.kernelWeights} kernel weights)`,
    );
    console.log(
      `bound on ${cpus().length} cores: ${Math.round(bound)} samples/s; best measured above ${best} samples/s (${((100 * best) / bound).toFixed(0)}% of it)`,
    );
  }
  if (censusSized) for (const line of censusSizedLines(censusSized)) console.log(line);
  if (gpu.rows.length > 0) {
    console.log(
      `\n${gpu.backend} vs wasm (reference mmoe, lazy Adam, default L2): samples/s by batch size, same run`,
    );
    if (gpu.adapter) console.log(`adapter: ${gpu.adapter}`);
    const g = [8, 12, 12, 10, 14, 14];
    console.log(pad(["batch", gpu.backend, "wasm", "ratio", `${gpu.backend} ms/step`, "wasm ms/step"], g));
    for (const r of gpu.rows)
      console.log(
        pad([r.batch, r.samplesPerSecond, r.wasm, `${r.ratio.toFixed(2)}x`, r.msPerStep, r.wasmMsPerStep], g),
      );
    if (gpu.fellBack) console.log(`(${gpu.backend} did not start: those rows ran on ${gpu.fellBack})`);
  }
  console.log(`\nwrote ${out} (${report.seconds} s)`);
}

/** Per batch size: the backend under test against wasm in the same run. */
function gpuSummary(results: readonly Result[]) {
  const tested = results.filter((r) => r.backend !== "wasm");
  const rows = tested.flatMap((r) => {
    const wasm = results.find((w) => w.backend === "wasm" && w.batch === r.batch);
    if (!wasm) return [];
    return [
      {
        batch: r.batch ?? BATCH,
        samplesPerSecond: r.samplesPerSecond,
        msPerStep: r.msPerStep,
        wasm: wasm.samplesPerSecond,
        wasmMsPerStep: wasm.msPerStep,
        ratio: r.samplesPerSecond / wasm.samplesPerSecond,
      },
    ];
  });
  const fell = tested.find((r) => r.backendUsed !== r.backend);
  return {
    backend: tested[0]?.backend ?? "",
    adapter: tested.find((r) => r.adapter)?.adapter,
    fellBack: fell?.backendUsed,
    rows,
  };
}

/**
 * The ceiling the wasm backend puts on training: the one-thread throughput of its fastest matrix
 * product on the reference MMoE's widest product (a batch of 1024 through an expert's first
 * layer, 124 x 128), the faster of the project's SIMD kernel (tf.matMul, trainer/train/wasm-kernels.ts)
 * and XNNPACK with its weights packed once (tf.fused.matMul, which the project leaves to the
 * backend), and the reference MMoE's training FLOPs per sample: each kernel weight is used once
 * per sample forward (a multiply-add, 2 FLOPs) and twice backward (the input's and the weight's
 * gradients), 6 FLOPs in all. Bias, activation, gather and optimiser work are left out, so
 * bound = peak x cores / FLOPs is an upper bound.
 */
function wasmPeak(quick: boolean) {
  const [n, k, m] = [BATCH, FEATURES * EMBEDDING_DIM + NUMERIC, REFERENCE_OPTIONS.expertSizes[0]!];
  const x = tf.randomNormal([n, k]) as tf.Tensor2D;
  const w = tf.randomNormal([k, m]) as tf.Tensor2D;
  const reps = quick ? 20 : 200;
  const gflops = (product: () => tf.Tensor): number => {
    for (let i = 0; i < 10; i++) product().dispose();
    const started = performance.now();
    for (let i = 0; i < reps; i++) product().dispose();
    return (2 * n * k * m * reps) / ((performance.now() - started) / 1000) / 1e9;
  };
  // Alternated, best of three each: other processes share this host's cores.
  const kernel: number[] = [];
  const xnnpack: number[] = [];
  for (let round = 0; round < 3; round++) {
    kernel.push(gflops(() => tf.matMul(x, w)));
    xnnpack.push(gflops(() => tf.fused.matMul({ a: x, b: w })));
  }
  tf.dispose([x, w]);
  const config: NetworkConfig = {
    arch: "mmoe",
    options: REFERENCE_OPTIONS,
    embeddingDim: EMBEDDING_DIM,
    denseSize: NUMERIC,
    idSlots: FEATURES,
    vocabSize: FEATURES,
    heads: [
      { name: "click", type: "binary" },
      { name: "purchase", type: "binary" },
    ],
  };
  const params = initNetwork(config, 42);
  const kernelWeights = Object.entries(params)
    .filter(([name]) => name.endsWith("/kernel"))
    .reduce((a, [, v]) => a + v.size, 0);
  tf.dispose(Object.values(params));
  return {
    shape: `${n}x${k} . ${k}x${m}`,
    gflops: Math.max(...kernel, ...xnnpack),
    kernelGflops: Math.max(...kernel),
    xnnpackGflops: Math.max(...xnnpack),
    kernelWeights,
    trainingFlopsPerSample: 6 * kernelWeights,
  };
}

const jobArg = process.argv.indexOf("--job");
if (jobArg >= 0) {
  const result = await runJob(JSON.parse(process.argv[jobArg + 1]!) as Job);
  console.log(`RESULT ${JSON.stringify(result)}`);
} else {
  await main();
}

/** Per round: samples/s with 1 and 2 workers, their ratio, CPU per wall time; the median ratio. */
function workersSummary(results: readonly Result[]) {
  const rounds = [...new Set(results.map((r) => r.round ?? 0))].flatMap((round) => {
    const one = results.find((r) => r.round === round && r.workers === 1);
    const two = results.find((r) => r.round === round && r.workers === 2);
    if (!one || !two) return [];
    return [
      {
        round,
        one: one.samplesPerSecond,
        two: two.samplesPerSecond,
        ratio: two.samplesPerSecond / one.samplesPerSecond,
        cpuPerWallOne: one.cpuMsPerStep / one.msPerStep,
        cpuPerWallTwo: two.cpuMsPerStep / two.msPerStep,
      },
    ];
  });
  const ratios = rounds.map((r) => r.ratio).sort((a, b) => a - b);
  const mid = ratios.length / 2;
  const medianRatio =
    ratios.length === 0
      ? Number.NaN
      : ratios.length % 2
        ? ratios[Math.floor(mid)]!
        : (ratios[mid - 1]! + ratios[mid]!) / 2;
  return { rounds, medianRatio };
}
