/**
 * npm run bench:int8: onnxruntime-web (wasm, one thread, graph optimisation "all" as the worker
 * runs it) latency of the reference MMoE (infer-model.ts: 12 categorical × 10k ids, 28 numeric,
 * 8 experts [128, 64], towers [32], two heads) as float32, int8 "qdq" (DequantizeLinear on the
 * kernels) and int8 "integer" (DynamicQuantizeLinear + MatMulInteger), at 10 to 1,000 candidates.
 *
 * The three graphs run round-robin in one loop, the order rotating each round, so load from
 * other processes on a shared machine falls on all three alike. Times session.run only, after
 * warm-up rounds. Writes out/bench/int8.json and prints p50/p99 and the p50 ratios to float32.
 *
 *   npm run bench:int8 [-- --runs 200] [-- --quick]
 */
import { mkdir, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { performance } from "node:perf_hooks";
import * as ort from "onnxruntime-web";
import { referenceMmoe } from "../test/fixtures/synthetic-model.ts";
import { maxAbsDiff } from "../trainer/core/metrics.ts";
import { buildOnnx } from "../trainer/export/export-model.ts";
import { plainFeeds } from "../trainer/export/onnx-session.ts";
import { requestProbeBatch } from "../trainer/export/probe-batch.ts";
import { INT8_FORMS } from "../trainer/export/quantize-form.ts";
import { type LatencyStats, latencyStats, machineInfo, runsArgs } from "./timing.ts";

ort.env.wasm.numThreads = 1;
ort.env.logLevel = "error";

const OUT = "out/bench/int8.json";
const CANDIDATES = [10, 100, 200, 500, 1000];
const GRAPHS = ["float32", ...INT8_FORMS.map((f) => `int8-${f}` as const)] as const;
type Graph = (typeof GRAPHS)[number];

interface Row {
  candidates: number;
  runs: number;
  ms: Record<Graph, LatencyStats>;
  /** p50 of each graph / p50 of float32. */
  ratioP50: Record<Graph, number>;
  /** max |p − p_float32| over the batch, head "click" and "purchase". */
  maxAbsDiff: Record<Graph, number>;
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;

/** The largest |Δ| over both heads' outputs. */
function maxHeadDiff(a: ort.InferenceSession.ReturnType, b: ort.InferenceSession.ReturnType): number {
  let max = 0;
  for (const head of ["click", "purchase"]) {
    max = Math.max(max, maxAbsDiff(a[head]!.data as Float32Array, b[head]!.data as Float32Array));
  }
  return max;
}

async function main(): Promise<void> {
  const { runs, quick } = runsArgs(process.argv.slice(2));
  const model = await referenceMmoe();
  const state = model.encoder;
  const float32 = buildOnnx(model);
  const manifest = float32.manifest;
  const bytes: Record<Graph, Uint8Array> = {
    float32: float32.bytes,
    "int8-qdq": buildOnnx(model, "int8", "qdq").bytes,
    "int8-integer": buildOnnx(model, "int8", "integer").bytes,
  };
  const sessions = {} as Record<Graph, ort.InferenceSession>;
  for (const g of GRAPHS)
    sessions[g] = await ort.InferenceSession.create(bytes[g], {
      executionProviders: ["wasm"],
      graphOptimizationLevel: "all",
    });
  const rows: Row[] = [];
  console.log(`candidates | ${GRAPHS.map((g) => `${g} p50 (p99) ms`).join(" | ")} | p50 ratio qdq, integer`);
  for (const candidates of CANDIDATES) {
    const batch = requestProbeBatch(state, candidates, candidates);
    const feeds = plainFeeds(manifest, batch);
    const times = Object.fromEntries(GRAPHS.map((g) => [g, [] as number[]])) as Record<Graph, number[]>;
    const outputs = {} as Record<Graph, ort.InferenceSession.ReturnType>;
    const warmup = Math.max(3, Math.round(runs / 10));
    for (let i = 0; i < warmup + runs; i++) {
      for (let j = 0; j < GRAPHS.length; j++) {
        const g = GRAPHS[(i + j) % GRAPHS.length]!;
        const start = performance.now();
        const out = await sessions[g].run(feeds);
        const ms = performance.now() - start;
        if (i >= warmup) times[g].push(ms);
        outputs[g] = out;
      }
    }
    const ms = Object.fromEntries(GRAPHS.map((g) => [g, latencyStats(times[g])])) as Record<
      Graph,
      LatencyStats
    >;
    const row: Row = {
      candidates,
      runs,
      ms,
      ratioP50: Object.fromEntries(GRAPHS.map((g) => [g, round3(ms[g].p50 / ms.float32.p50)])) as Record<
        Graph,
        number
      >,
      maxAbsDiff: Object.fromEntries(
        GRAPHS.map((g) => [g, Number(maxHeadDiff(outputs.float32, outputs[g]).toPrecision(3))]),
      ) as Record<Graph, number>,
    };
    rows.push(row);
    console.log(
      `${String(candidates).padStart(10)} | ${GRAPHS.map((g) => `${ms[g].p50.toFixed(3).padStart(8)} (${ms[g].p99.toFixed(3)})`).join(" | ")} | ` +
        `x${row.ratioP50["int8-qdq"].toFixed(3)}, x${row.ratioP50["int8-integer"].toFixed(3)}`,
    );
  }
  for (const s of Object.values(sessions)) await s.release();
  const report = {
    createdAt: new Date().toISOString(),
    quick,
    machine: machineInfo(),
    runtime: {
      onnxruntimeWeb: ort.env.versions.web ?? "unknown",
      backend: "wasm",
      threads: 1,
      optimization: "all",
    },
    model: { arch: "mmoe", experts: 8, expertSizes: [128, 64], tower: [32], embeddingDim: 8 },
    bytes: Object.fromEntries(GRAPHS.map((g) => [g, bytes[g].length])),
    rows,
  };
  await mkdir(dirname(OUT), { recursive: true });
  await writeFile(OUT, `${JSON.stringify(report, null, 1)}\n`);
  console.log(`wrote ${OUT}`);
}

await main();
