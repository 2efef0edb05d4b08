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
import { cpus } from "node:os";
import { dirname } from "node:path";
import { performance } from "node:perf_hooks";
import * as ort from "onnxruntime-web";
import type { EncodedBatch } from "../../shared/encoder/encode.ts";
import { buildFactorisedOnnx, buildOnnx } from "../export/export-model.ts";
import type { FactorisedLayout } from "../export/factorised-layout.ts";
import { factorisedLayout, sliceBatch } from "../export/factorised-layout.ts";
import { openSession, type Session } from "../export/onnx-session.ts";
import { requestProbeBatch } from "../export/probe-batch.ts";
import { referenceMmoe } from "./infer-model.ts";

const OUT = "out/bench/infer.json";
const CANDIDATES = [10, 100, 500, 1000];

interface Row {
  weights: "float32" | "int8";
  candidates: number;
  runs: number;
  plain: { p50: number; p99: number; mean: number };
  factorised: { p50: number; p99: number; mean: number };
  /** factorised p50 / plain p50. */
  ratioP50: number;
  ratioP99: number;
  maxAbsDiff: number;
}

function parseArgs(argv: readonly string[]): { runs: number; quick: boolean } {
  const quick = argv.includes("--quick");
  const at = argv.indexOf("--runs");
  const runs = at >= 0 ? Number(argv[at + 1]) : quick ? 20 : 200;
  if (!Number.isInteger(runs) || runs < 5)
    throw new Error(`--runs: expected an integer >= 5, got "${argv[at + 1]}"`);
  return { runs, quick };
}

function plainFeeds(batch: EncodedBatch, denseSize: number, idSlots: number): Record<string, ort.Tensor> {
  return {
    dense: new ort.Tensor("float32", batch.dense, [batch.rows, denseSize]),
    ids: new ort.Tensor("int32", batch.ids, [batch.rows, idSlots]),
  };
}

function factorisedFeeds(
  batch: EncodedBatch,
  state: Parameters<typeof sliceBatch>[1],
  layout: FactorisedLayout,
): Record<string, ort.Tensor> {
  const u = sliceBatch(batch, state, layout.user, { start: 0, count: 1 });
  const it = sliceBatch(batch, state, layout.item, { start: 0, count: batch.rows });
  return {
    user_dense: new ort.Tensor("float32", u.dense, [1, layout.user.dense.length]),
    user_ids: new ort.Tensor("int32", u.ids, [1, layout.user.ids.length]),
    item_dense: new ort.Tensor("float32", it.dense, [batch.rows, layout.item.dense.length]),
    item_ids: new ort.Tensor("int32", it.ids, [batch.rows, layout.item.ids.length]),
  };
}

function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}

function summary(times: number[]): Row["plain"] {
  const sorted = [...times].sort((a, b) => a - b);
  const round = (x: number) => Math.round(x * 1000) / 1000;
  return {
    p50: round(quantile(sorted, 0.5)),
    p99: round(quantile(sorted, 0.99)),
    mean: round(times.reduce((a, b) => a + b, 0) / times.length),
  };
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
  const { runs, quick } = parseArgs(process.argv.slice(2));
  const model = await referenceMmoe();
  const state = model.encoder;
  const layout = factorisedLayout(state);
  const rows: Row[] = [];
  const sizes: Record<string, number> = {};
  for (const weights of ["float32", "int8"] as const) {
    const plainBytes = buildOnnx(model, weights).bytes;
    const factorisedBytes = buildFactorisedOnnx(model, layout, weights).bytes;
    sizes[`plain.${weights}`] = plainBytes.length;
    sizes[`factorised.${weights}`] = factorisedBytes.length;
    const plain = await openSession(plainBytes);
    const factorised = await openSession(factorisedBytes);
    for (const candidates of CANDIDATES) {
      const batch = requestProbeBatch(state, candidates, candidates);
      const pf = plainFeeds(batch, state.denseSize, state.idSlots);
      const ff = factorisedFeeds(batch, state, layout);
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
      const ps = summary(a);
      const fs = summary(b);
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
    machine: { cpus: cpus().length, cpu: cpus()[0]?.model ?? "unknown", node: process.version },
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
