/**
 * npm run bench:infer: onnxruntime-web (wasm, one thread, as the worker runs it) latency of the
 * plain graph against the factorised one (user/context part at batch 1), for 10, 100, 500 and
 * 1,000 candidates, float32 and int8, on an MMoE of the reference shape: 12 categorical features
 * × 10k ids (dim 8) + 28 numeric, 8 experts [128, 64], towers [32], two binary heads; random
 * weights from the trainer's own init. Sides: user 4 categorical + 14 numeric, context 2
 * categorical, item 6 categorical + 14 numeric (infer-model.ts).
 *
 * Times session.run only (inputs already encoded; the factorised inputs already sliced), plain
 * and factorised interleaved run by run so drift hits both alike, after warm-up runs. Writes
 * out/bench/infer.json and prints p50/p99 per configuration and the ratio factorised/plain.
 *
 *   npm run bench:infer [-- --runs 200] [-- --quick]
 */
import { mkdir, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { performance } from "node:perf_hooks";
import * as ort from "onnxruntime-web";
import { referenceMmoe } from "../test/fixtures/synthetic-model.ts";
import { buildFactorisedOnnx, buildOnnx } from "../trainer/export/export-model.ts";
import { factorisedLayout } from "../trainer/export/factorised-layout.ts";
import { factorisedFeeds, openSession, plainFeeds, type Session } from "../trainer/export/onnx-session.ts";
import { requestProbeBatch } from "../trainer/export/probe-batch.ts";
import { type LatencyStats, latencyStats, machineInfo, runsArgs } from "./timing.ts";

const OUT = "out/bench/infer.json";
const CANDIDATES = [10, 100, 500, 1000];

interface Row {
  weights: "float32" | "int8";
  candidates: number;
  runs: number;
  plain: LatencyStats;
  factorised: LatencyStats;
  /** factorised p50 / plain p50. */
  ratioP50: number;
  ratioP99: number;
  maxAbsDiff: number;
}

async function timed(
  session: Session,
  feeds: Record<string, ort.Tensor>,
): Promise<{ ms: number; out: ort.Tensor }> {
  const start = performance.now();
  const results = await session.run(feeds);
  return { ms: performance.now() - start, out: results.click! };
}

async function main(): Promise<void> {
  const { runs, quick } = runsArgs(process.argv.slice(2));
  const model = await referenceMmoe();
  const state = model.encoder;
  const layout = factorisedLayout(state);
  const rows: Row[] = [];
  const sizes: Record<string, number> = {};
  for (const weights of ["float32", "int8"] as const) {
    const { bytes: plainBytes, manifest } = buildOnnx(model, weights);
    const factorisedGraph = buildFactorisedOnnx(model, layout, weights);
    const factorisedBytes = factorisedGraph.bytes;
    const factorisedManifest = { features: state, factorised: { inputs: factorisedGraph.inputs, ...layout } };
    sizes[`plain.${weights}`] = plainBytes.length;
    sizes[`factorised.${weights}`] = factorisedBytes.length;
    const plain = await openSession(plainBytes);
    const factorised = await openSession(factorisedBytes);
    for (const candidates of CANDIDATES) {
      const batch = requestProbeBatch(state, candidates, candidates);
      const pf = plainFeeds(manifest, batch);
      const ff = factorisedFeeds(factorisedManifest, batch);
      const warmup = Math.max(3, Math.round(runs / 10));
      const a: number[] = [];
      const b: number[] = [];
      let maxAbsDiff = 0;
      for (let i = 0; i < warmup + runs; i++) {
        // Alternate which goes first, so neither always runs on a warmer cache.
        const first = i % 2 === 0;
        const p = first ? await timed(plain, pf) : undefined;
        const f = await timed(factorised, ff);
        const p2 = p ?? (await timed(plain, pf));
        if (i < warmup) continue;
        a.push(p2.ms);
        b.push(f.ms);
        if (i === warmup) {
          const x = p2.out.data as Float32Array;
          const y = f.out.data as Float32Array;
          for (let k = 0; k < x.length; k++) maxAbsDiff = Math.max(maxAbsDiff, Math.abs(x[k]! - y[k]!));
        }
      }
      // Timing two graphs that disagree would compare different work: refuse.
      const tolerance = weights === "float32" ? 1e-5 : 0.02;
      if (!(maxAbsDiff <= tolerance))
        throw new Error(`bench: ${weights} factorised graph differs from the plain one by ${maxAbsDiff}`);
      const ps = latencyStats(a);
      const fs = latencyStats(b);
      rows.push({
        weights,
        candidates,
        runs,
        plain: ps,
        factorised: fs,
        ratioP50: Math.round((fs.p50 / ps.p50) * 1000) / 1000,
        ratioP99: Math.round((fs.p99 / ps.p99) * 1000) / 1000,
        maxAbsDiff,
      });
      const r = rows.at(-1)!;
      console.log(
        `${weights.padEnd(7)} ${String(candidates).padStart(5)} cand | plain p50 ${ps.p50.toFixed(3).padStart(8)} p99 ${ps.p99
          .toFixed(3)
          .padStart(8)} ms | factorised p50 ${fs.p50.toFixed(3).padStart(8)} p99 ${fs.p99
          .toFixed(3)
          .padStart(8)} ms | ratio p50 ${r.ratioP50.toFixed(3)} p99 ${r.ratioP99.toFixed(3)}`,
      );
    }
    await plain.release();
    await factorised.release();
  }
  const report = {
    createdAt: new Date().toISOString(),
    quick,
    machine: machineInfo(),
    runtime: {
      onnxruntimeWeb: ort.env.versions.web ?? "unknown",
      backend: "wasm",
      threads: ort.env.wasm.numThreads,
    },
    model: {
      arch: "mmoe",
      experts: 8,
      expertSizes: [128, 64],
      tower: [32],
      embeddingDim: 8,
      categorical: 12,
      idsPerFeature: 10_000,
      numeric: 28,
      inputWidth: state.denseSize + state.idSlots * 8,
      userColumns: layout.user.dense.length + layout.user.ids.length * 8,
      itemColumns: layout.item.dense.length + layout.item.ids.length * 8,
    },
    bytes: sizes,
    rows,
  };
  await mkdir(dirname(OUT), { recursive: true });
  await writeFile(OUT, `${JSON.stringify(report, null, 1)}\n`);
  console.log(`wrote ${OUT}`);
}

await main();
