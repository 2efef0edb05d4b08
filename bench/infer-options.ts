/**
 * npm run bench:infer -- options (or tsx bench/infer-options.ts): which graph and which
 * onnxruntime-web session options the worker should use, on the reference-shape MMoE of
 * bench:infer (infer-model.ts). Every configuration is timed round-robin in one loop, so load
 * from other processes falls on all alike; figures are reported as ratios to the worker's
 * configuration before this bench (int8 plain graph, graphOptimizationLevel "all").
 *
 * Times, per configuration: session creation (the cold-start share of the model) and
 * session.run at --candidates rows, with inputs encoded beforehand. Writes
 * out/bench/infer-options.json.
 *
 *   tsx bench/infer-options.ts [--runs 200] [--candidates 200] [--threads 1]
 */
import { mkdir, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { performance } from "node:perf_hooks";
import * as ort from "onnxruntime-web";
import { referenceMmoe } from "../test/fixtures/synthetic-model.ts";
import { buildFactorisedOnnx, buildOnnx } from "../trainer/export/export-model.ts";
import { factorisedLayout } from "../trainer/export/factorised-layout.ts";
import { factorisedFeeds, plainFeeds } from "../trainer/export/onnx-session.ts";
import { requestProbeBatch } from "../trainer/export/probe-batch.ts";
import { intFlag, machineInfo, quantile } from "./timing.ts";

const OUT = "out/bench/infer-options.json";

interface Args {
  runs: number;
  candidates: number;
  threads: number;
}

function parseArgs(argv: readonly string[]): Args {
  return {
    runs: intFlag(argv, "--runs", 200, 5),
    candidates: intFlag(argv, "--candidates", 200, 1),
    threads: intFlag(argv, "--threads", 1, 1),
  };
}

type Weights = "float32" | "int8";
type Graph = "plain" | "factorised";

interface Config {
  name: string;
  weights: Weights;
  graph: Graph;
  options: ort.InferenceSession.SessionOptions;
}

function configs(candidates: number): Config[] {
  const all: ort.InferenceSession.SessionOptions = { graphOptimizationLevel: "all" };
  const list: Config[] = [];
  for (const graph of ["plain", "factorised"] as const)
    for (const weights of ["int8", "float32"] as const)
      list.push({ name: `${weights} ${graph}`, weights, graph, options: all });
  const variants: [string, ort.InferenceSession.SessionOptions][] = [
    ["opt basic", { graphOptimizationLevel: "basic" }],
    ["opt disabled", { graphOptimizationLevel: "disabled" }],
    ["no mem pattern", { ...all, enableMemPattern: false }],
    ["no cpu arena", { ...all, enableCpuMemArena: false }],
    ["parallel", { ...all, executionMode: "parallel" }],
    ["fixed batch", { ...all, freeDimensionOverrides: { n: candidates } }],
  ];
  for (const graph of ["plain", "factorised"] as const)
    for (const [name, options] of variants)
      list.push({ name: `float32 ${graph} ${name}`, weights: "float32", graph, options });
  return list;
}

const r3 = (x: number) => Math.round(x * 1000) / 1000;

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  ort.env.wasm.numThreads = args.threads;
  ort.env.logLevel = "error";
  const model = await referenceMmoe();
  const state = model.encoder;
  const layout = factorisedLayout(state);
  const float32 = { plain: buildOnnx(model), factorised: buildFactorisedOnnx(model, layout) };
  const int8 = { plain: buildOnnx(model, "int8"), factorised: buildFactorisedOnnx(model, layout, "int8") };
  const bytes: Record<string, Uint8Array> = {
    "float32 plain": float32.plain.bytes,
    "float32 factorised": float32.factorised.bytes,
    "int8 plain": int8.plain.bytes,
    "int8 factorised": int8.factorised.bytes,
  };
  // Both weight kinds take the same inputs.
  const plain = float32.plain.manifest;
  const factorised = { features: state, factorised: { inputs: float32.factorised.inputs, ...layout } };
  const batch = requestProbeBatch(state, args.candidates, args.candidates);
  const list = configs(args.candidates);

  // Session creation, round-robin: the model's share of a cold start.
  const create: number[][] = list.map(() => []);
  const sessions: ort.InferenceSession[] = [];
  for (let round = 0; round < 6; round++)
    for (const [i, c] of list.entries()) {
      const start = performance.now();
      const session = await ort.InferenceSession.create(bytes[`${c.weights} ${c.graph}`]!, c.options);
      const ms = performance.now() - start;
      if (round > 0) create[i]!.push(ms);
      if (round === 5) sessions[i] = session;
      else await session.release();
    }

  const inputs = list.map((c) =>
    c.graph === "plain" ? plainFeeds(plain, batch) : factorisedFeeds(factorised, batch),
  );
  const runs: number[][] = list.map(() => []);
  const reference = (await sessions[0]!.run(inputs[0]!)).click!.data as Float32Array;
  const warmup = Math.max(10, Math.round(args.runs / 10));
  for (let round = 0; round < warmup + args.runs; round++)
    for (let k = 0; k < list.length; k++) {
      // Rotate the starting configuration so none always runs first in a round.
      const i = (k + round) % list.length;
      const start = performance.now();
      const out = await sessions[i]!.run(inputs[i]!);
      const ms = performance.now() - start;
      if (round < warmup) {
        const click = out.click!.data as Float32Array;
        const diff = Math.max(...click.map((x, j) => Math.abs(x - reference[j]!)));
        // int8 against int8/float32: configurations that disagree compute different work.
        if (!(diff <= 0.05))
          throw new Error(`bench: ${list[i]!.name} differs from ${list[0]!.name} by ${diff}`);
      } else runs[i]!.push(ms);
    }

  const base = { run: quantile(runs[0]!, 0.5), create: quantile(create[0]!, 0.5) };
  const rows = list.map((c, i) => ({
    name: c.name,
    weights: c.weights,
    graph: c.graph,
    options: c.options,
    bytes: bytes[`${c.weights} ${c.graph}`]!.length,
    runP50: r3(quantile(runs[i]!, 0.5)),
    runP99: r3(quantile(runs[i]!, 0.99)),
    createP50: r3(quantile(create[i]!, 0.5)),
    runRatio: r3(quantile(runs[i]!, 0.5) / base.run),
    createRatio: r3(quantile(create[i]!, 0.5) / base.create),
  }));
  for (const row of rows)
    console.log(
      `${row.name.padEnd(34)} run p50 ${row.runP50.toFixed(3).padStart(7)} p99 ${row.runP99.toFixed(3).padStart(7)} ms  ×${row.runRatio.toFixed(3)} | create ${row.createP50.toFixed(1).padStart(6)} ms ×${row.createRatio.toFixed(3)} | ${(row.bytes / 1e6).toFixed(2)} MB`,
    );
  const report = {
    createdAt: new Date().toISOString(),
    args,
    machine: machineInfo(),
    onnxruntimeWeb: ort.env.versions.web ?? "unknown",
    baseline: list[0]!.name,
    rows,
  };
  await mkdir(dirname(OUT), { recursive: true });
  await writeFile(OUT, `${JSON.stringify(report, null, 1)}\n`);
  console.log(`wrote ${OUT}`);
}

await main();
