/**
 * npm run bench:edge: the worker's speed on the reference-shape MMoE (infer-model.ts: 12
 * categorical × 10k ids + 28 numeric, 8 experts [128, 64], towers [32], two heads), or with
 * `--model default` on the MMoE that `train --arch mmoe` builds with default flags on the same
 * features (4 experts [64, 32], two cross layers, numbers also as quantile buckets), or `--model
 * small` (2 experts [32], towers [16]: a distilled serving size); `--cross N` overrides the
 * model's cross layers, `--cross-layout parallel` puts them beside the experts. Plain and,
 * unless the model has stacked cross layers, factorised graphs,
 * against local `wrangler dev` (workerd):
 *  - cold start: over --cold fresh servers whose worker loads the model on the first request,
 *    that request's Server-Timing `load` phase (ORT instantiation + session + encoder; workerd's
 *    clocks stand still in module scope, so start-up cannot time itself) and its total;
 *  - warm p50/p99 per request for 10-1,000 candidates, inside the worker (sum of its
 *    Server-Timing phases: read, parse, load, encode, infer, fuse; and that sum without `read`,
 *    the wait for the body's bytes) and from the client minus the dev server's own overhead
 *    (median GET /healthz, sent interleaved);
 *  - requests/s: --concurrency clients in a closed loop;
 * and, in this Node process on the same encoded batches, session.run in onnxruntime-web (wasm,
 * one thread, as the worker runs it), in native onnxruntime-node (one thread), and a plain-JS
 * forward pass (edge-forward.ts), as ratios to the worker's `infer` phase.
 * Writes out/bench/edge.json and prints a table.
 *
 * --weights picks the graphs the worker serves: int8 (default: model.int8.onnx and its factorised
 * twin, integer form, ~0.5x float32's inference time) or float32.
 *
 *   npm run bench:edge [-- --runs 200] [-- --cold 3] [-- --quick] [-- --weights float32] [-- --model default|small] [-- --cross 0] [-- --cross-layout parallel]
 */
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import * as ortWeb from "onnxruntime-web";
import { compileEncoder, type EncodedBatch } from "../shared/encoder/encode.ts";
import type { ModelManifest } from "../shared/manifest.ts";
import { jsMmoe } from "../test/fixtures/js-mmoe.ts";
import { encodeBody, type RerankBody, requestBody } from "../test/fixtures/request-body.ts";
import { defaultMmoe, referenceMmoe, smallMmoe } from "../test/fixtures/synthetic-model.ts";
import { loadTrainedModel, saveTrainedModel } from "../trainer/artifact/trained-model.ts";
import { exportModelDir } from "../trainer/export/export-model.ts";
import { factorisedFeeds, plainFeeds, type TensorClass } from "../trainer/export/onnx-session.ts";
import { hasStackedCross } from "../trainer/models/cross-network.ts";
import { type DevServer, startDevServer, timedPost } from "./edge-wrangler.ts";
import { choiceFlag, intFlag, type LatencyStats, latencyStats, machineInfo } from "./timing.ts";

const MODELS = { reference: referenceMmoe, default: defaultMmoe, small: smallMmoe } as const;
type ModelKind = keyof typeof MODELS;
const CANDIDATES = [10, 100, 200, 500, 1000];
const PORT = 8797;
type Graph = "plain" | "factorised";

interface Args {
  model: ModelKind;
  weights: "float32" | "int8";
  runs: number;
  cold: number;
  concurrency: number;
  quick: boolean;
  /** Cross layers instead of the model's own (--cross). */
  cross?: number;
  /** --cross-layout parallel: cross layers beside the experts, which keeps the factorised graph. */
  parallel: boolean;
}

function parseArgs(argv: readonly string[]): Args {
  const quick = argv.includes("--quick");
  const num = (flag: string, fallback: number, min: number) => intFlag(argv, flag, fallback, min);
  const models = Object.keys(MODELS) as [ModelKind, ...ModelKind[]];
  return {
    model: choiceFlag(argv, "--model", models),
    weights: choiceFlag(argv, "--weights", ["int8", "float32"]),
    runs: num("--runs", quick ? 30 : 200, 5),
    cold: num("--cold", quick ? 1 : 3, 1),
    concurrency: num("--concurrency", 4, 1),
    quick,
    ...(argv.includes("--cross") ? { cross: num("--cross", 0, 0) } : {}),
    parallel: choiceFlag(argv, "--cross-layout", ["stacked", "parallel"]) === "parallel",
  };
}

// ---- the model and the requests --------------------------------------------------------------

/**
 * Where a model's files and its results go: out/bench/edge-model and edge.json for the reference,
 * a `-cross<N>` suffix with --cross, `-parallel` with --cross-layout parallel.
 */
function paths(args: Args): { dir: string; out: string } {
  const name = [
    ...(args.model === "reference" ? [] : [args.model]),
    ...(args.cross === undefined ? [] : [`cross${args.cross}`]),
    ...(args.parallel ? ["parallel"] : []),
  ].join("-");
  return name === ""
    ? { dir: "out/bench/edge-model", out: "out/bench/edge.json" }
    : { dir: `out/bench/edge-model-${name}`, out: `out/bench/edge-${name}.json` };
}

/** Exports the model, with its factorised graphs unless it has stacked cross layers. */
async function buildModelDir(args: Args): Promise<ModelManifest> {
  const dir = paths(args).dir;
  const model = await MODELS[args.model]({
    ...(args.cross === undefined ? {} : { cross: args.cross }),
    ...(args.parallel ? { crossLayout: "parallel" as const } : {}),
  });
  await saveTrainedModel(dir, model);
  const factorised = !hasStackedCross(model.weights);
  const { manifest } = await exportModelDir(dir, { int8: true, factorised });
  return manifest;
}

// ---- the worker ---------------------------------------------------------------------------------

interface WorkerRow {
  candidates: number;
  /** Sum of the worker's Server-Timing phases. */
  inside: LatencyStats;
  /**
   * The phases without `read` (the wait for the request body's bytes through the dev proxy):
   * the local stand-in for per-request CPU.
   */
  compute: LatencyStats;
  /** The `infer` phase alone. */
  infer: LatencyStats;
  /** Client wall time per rerank. */
  client: LatencyStats;
  /** Client p50/p99 minus the median /healthz round trip. */
  clientMinusBaseline: { p50: number; p99: number };
  baseline: LatencyStats;
  requestsPerSecond: number;
}

async function timedGet(base: string): Promise<number> {
  const start = performance.now();
  const res = await fetch(`${base}/healthz`);
  await res.arrayBuffer();
  return performance.now() - start;
}

async function measureWorker(
  server: DevServer,
  bodies: Map<number, string>,
  args: Args,
): Promise<WorkerRow[]> {
  const rows: WorkerRow[] = [];
  for (const n of CANDIDATES) {
    const body = bodies.get(n)!;
    const warmup = Math.max(20, Math.round(args.runs / 5));
    const inside: number[] = [];
    const compute: number[] = [];
    const infer: number[] = [];
    const client: number[] = [];
    const baseline: number[] = [];
    for (let i = 0; i < warmup + args.runs; i++) {
      const b = await timedGet(server.base);
      const r = await timedPost(server.base, body);
      if (i < warmup) continue;
      baseline.push(b);
      client.push(r.ms);
      const sum = Object.values(r.phases).reduce((a, x) => a + x, 0);
      inside.push(sum);
      compute.push(sum - (r.phases.read ?? 0));
      infer.push(r.phases.infer ?? Number.NaN);
    }
    const total = Math.max(args.runs, 40);
    let sent = 0;
    const start = performance.now();
    await Promise.all(
      Array.from({ length: args.concurrency }, async () => {
        while (sent < total) {
          sent++;
          await timedPost(server.base, body);
        }
      }),
    );
    const rps = total / ((performance.now() - start) / 1000);
    const c = latencyStats(client);
    const base = latencyStats(baseline);
    const r = (x: number) => Math.round(x * 1000) / 1000;
    rows.push({
      candidates: n,
      inside: latencyStats(inside),
      compute: latencyStats(compute),
      infer: latencyStats(infer),
      client: c,
      clientMinusBaseline: { p50: r(c.p50 - base.p50), p99: r(c.p99 - base.p50) },
      baseline: base,
      requestsPerSecond: Math.round(rps * 10) / 10,
    });
  }
  return rows;
}

// ---- the same model in Node ---------------------------------------------------------------------

interface NodeRunner {
  name: string;
  run(batch: EncodedBatch): Promise<unknown>;
}

async function nodeRunners(
  dir: string,
  manifest: ModelManifest,
  graph: Graph,
  weights: Args["weights"],
): Promise<{ runners: NodeRunner[]; skipped: string[] }> {
  const f = manifest.factorised!;
  const file =
    weights === "int8"
      ? graph === "plain"
        ? "model.int8.onnx"
        : f.int8File!
      : graph === "plain"
        ? "model.onnx"
        : f.file;
  const bytes = new Uint8Array(await readFile(join(dir, file)));
  const feeds = <T>(Tensor: TensorClass<T>, batch: EncodedBatch): Record<string, T> =>
    graph === "plain"
      ? plainFeeds(manifest, batch, Tensor)
      : factorisedFeeds({ features: manifest.features, factorised: f }, batch, Tensor);
  ortWeb.env.wasm.numThreads = 1;
  const web = await ortWeb.InferenceSession.create(bytes, { graphOptimizationLevel: "all" });
  const runners: NodeRunner[] = [{ name: "ortWeb", run: (b) => web.run(feeds(ortWeb.Tensor, b)) }];
  const skipped: string[] = [];
  try {
    const native = await import("onnxruntime-node");
    const session = await native.InferenceSession.create(bytes, {
      intraOpNumThreads: 1,
      interOpNumThreads: 1,
      graphOptimizationLevel: "all",
    });
    runners.push({ name: "ortNode", run: (b) => session.run(feeds(native.Tensor, b)) });
  } catch (error) {
    skipped.push(`ortNode: ${(error as Error).message.split("\n")[0]}`);
  }
  return { runners, skipped };
}

async function timeRunner(
  run: () => Promise<unknown> | unknown,
  runs: number,
  warmup = Math.max(50, runs),
): Promise<LatencyStats> {
  const times: number[] = [];
  for (let i = 0; i < warmup + runs; i++) {
    const start = performance.now();
    await run();
    if (i >= warmup) times.push(performance.now() - start);
  }
  return latencyStats(times);
}

// ---- main ------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const { dir: MODEL_DIR, out: OUT } = paths(args);
  console.log(`building ${MODEL_DIR} (MMoE, ${args.model} shape; the worker serves ${args.weights})…`);
  const manifest = await buildModelDir(args);
  const graphs: Graph[] = manifest.factorised ? ["plain", "factorised"] : ["plain"];
  const state = manifest.features;
  const encoder = compileEncoder(state);
  const bodies = new Map<number, RerankBody>(CANDIDATES.map((n) => [n, requestBody(state, n, n)]));
  const batches = new Map<number, EncodedBatch>([...bodies].map(([n, b]) => [n, encodeBody(encoder, b)]));
  const js = jsMmoe(await loadTrainedModel(MODEL_DIR));

  // The plain-JS pass must compute the same network, or its column compares different work.
  const check = batches.get(10)!;
  const reference = await ortWeb.InferenceSession.create(
    new Uint8Array(await readFile(join(MODEL_DIR, "model.onnx"))),
  );
  const expected = await reference.run({
    dense: new ortWeb.Tensor("float32", check.dense, [check.rows, state.denseSize]),
    ids: new ortWeb.Tensor("int32", check.ids, [check.rows, state.idSlots]),
  });
  for (const factorised of manifest.factorised
    ? [undefined, { user: manifest.factorised.user }]
    : [undefined]) {
    const got = js.run(check, factorised);
    for (const head of manifest.heads) {
      const a = expected[head.output]!.data as Float32Array;
      const diff = Math.max(...a.map((x, i) => Math.abs(x - got[head.name]![i]!)));
      if (!(diff <= 1e-4))
        throw new Error(`bench: plain-JS head "${head.name}" differs from onnxruntime by ${diff}`);
    }
  }

  const report: Record<string, unknown> = {
    createdAt: new Date().toISOString(),
    args,
    machine: machineInfo(),
    model: {
      kind: args.model,
      arch: "mmoe",
      weights: args.weights,
      options: (await loadTrainedModel(MODEL_DIR)).config.options,
      files: manifest.files,
    },
    graphs: {},
  };
  const json = new Map([...bodies].map(([n, b]) => [n, JSON.stringify(b)]));
  for (const graph of graphs) {
    console.log(`\n== ${graph} graph`);
    const options = { weights: args.weights, graph: graph === "plain" ? "plain" : "auto" } as const;
    // Cold start: a lazily loading worker per sample, so the first rerank's `load` phase times
    // ORT instantiation + session creation (workerd's clocks stand still in module scope); each
    // round once with ORT started from its snapshot (the worker's default) and once without,
    // alternating which goes first.
    const cold: {
      ortSnapshot: boolean;
      loadMs: number;
      firstRerankInsideMs: number;
      firstRerankClientMs: number;
      readyMs: number;
    }[] = [];
    for (let i = 0; i < args.cold; i++) {
      for (const ortSnapshot of i % 2 ? [false, true] : [true, false]) {
        const server = await startDevServer(MODEL_DIR, PORT, { ...options, load: "lazy", ortSnapshot });
        try {
          const first = await timedPost(server.base, json.get(200)!);
          const inside = Object.values(first.phases).reduce((a, x) => a + x, 0);
          cold.push({
            ortSnapshot,
            loadMs: first.phases.load ?? Number.NaN,
            firstRerankInsideMs: inside,
            firstRerankClientMs: Math.round(first.ms * 100) / 100,
            readyMs: Math.round(server.readyMs),
          });
          console.log(
            `  cold start ${i + 1} (${ortSnapshot ? "ORT snapshot" : "no snapshot"}): load ${first.phases.load} ms; first rerank (200) inside ${inside} ms, client ${first.ms.toFixed(1)} ms; wrangler ready in ${(server.readyMs / 1000).toFixed(1)} s`,
          );
        } finally {
          await server.stop();
        }
      }
    }
    const coldStartLoad = latencyStats(cold.filter((c) => c.ortSnapshot).map((c) => c.loadMs));
    const coldStartLoadNoSnapshot = latencyStats(cold.filter((c) => !c.ortSnapshot).map((c) => c.loadMs));
    console.log(
      `  cold start load p50: ${coldStartLoad.p50} ms with the ORT snapshot, ${coldStartLoadNoSnapshot.p50} ms without (×${(coldStartLoad.p50 / coldStartLoadNoSnapshot.p50).toFixed(2)})`,
    );
    // Warm: the model loaded at start-up, as the real entry does.
    const server = await startDevServer(MODEL_DIR, PORT, options);
    let warm: WorkerRow[];
    let firstAfterStartup: number;
    try {
      firstAfterStartup = (await timedPost(server.base, json.get(200)!)).ms;
      console.log(`  start-up entry: first rerank (200) client ${firstAfterStartup.toFixed(1)} ms`);
      warm = await measureWorker(server, json, args);
    } finally {
      await server.stop();
    }
    const { runners, skipped } = await nodeRunners(MODEL_DIR, manifest, graph, args.weights);
    const rows = [];
    for (const w of warm) {
      const batch = batches.get(w.candidates)!;
      const node: Record<string, LatencyStats> = {};
      for (const r of runners) node[r.name] = await timeRunner(() => r.run(batch), args.runs);
      node.plainJs = await timeRunner(
        () => js.run(batch, graph === "factorised" ? { user: manifest.factorised!.user } : undefined),
        20,
        5,
      );
      const ratio = Object.fromEntries(
        Object.entries(node).map(([k, s]) => [k, Math.round((w.infer.p50 / s.p50) * 100) / 100]),
      );
      rows.push({ ...w, node, workerInferOver: ratio });
      console.log(
        `  ${String(w.candidates).padStart(5)} cand | inside p50 ${w.inside.p50.toFixed(2)} p99 ${w.inside.p99.toFixed(2)} ms (without read p50 ${w.compute.p50.toFixed(2)} p99 ${w.compute.p99.toFixed(2)}; infer p50 ${w.infer.p50.toFixed(2)}) | client-baseline p50 ${w.clientMinusBaseline.p50.toFixed(2)} p99 ${w.clientMinusBaseline.p99.toFixed(2)} | ${w.requestsPerSecond} req/s | node run p50: ${Object.entries(
          node,
        )
          .map(([k, s]) => `${k} ${s.p50.toFixed(3)}`)
          .join(", ")} ms`,
      );
    }
    (report.graphs as Record<string, unknown>)[graph] = {
      cold,
      coldStartLoad,
      coldStartLoadNoSnapshot,
      firstRerankAfterStartupMs: Math.round(firstAfterStartup * 100) / 100,
      rows,
      skipped,
    };
    if (skipped.length) console.log(`  skipped: ${skipped.join("; ")}`);
  }
  await mkdir(dirname(OUT), { recursive: true });
  await writeFile(OUT, `${JSON.stringify(report, null, 1)}\n`);
  console.log(`\nwrote ${OUT}`);
}

await main();
