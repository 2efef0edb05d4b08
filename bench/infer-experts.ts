/**
 * How an MMoE's expert layers are laid out in the graph changes onnxruntime-web's speed: the
 * reference shape's 8 experts [128, 64] over a 152-wide input as 8 separate MatMul chains (as
 * the exporter writes them) against one [152, 1024] MatMul for all first layers and one batched
 * MatMul [8, 128, 64] for the second. Same arithmetic, random weights; both timed round-robin.
 *
 *   tsx bench/infer-experts.ts [--runs 200] [--candidates 200]
 */
import { loadavg } from "node:os";
import { performance } from "node:perf_hooks";
import * as ort from "onnxruntime-web";
import { createGraph } from "../trainer/core/onnx-graph.ts";
import { intFlag } from "./timing.ts";

const WIDTH = 152;
const EXPERTS = 8;
const H1 = 128;
const H2 = 64;

function random(n: number, seed: number): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return (s / 4294967296 - 0.5) * 0.2;
  });
}

const w1 = Array.from({ length: EXPERTS }, (_, e) => random(WIDTH * H1, 10 + e));
const b1 = Array.from({ length: EXPERTS }, (_, e) => random(H1, 20 + e));
const w2 = Array.from({ length: EXPERTS }, (_, e) => random(H1 * H2, 30 + e));
const b2 = Array.from({ length: EXPERTS }, (_, e) => random(H2, 40 + e));

/** 8 chains, outputs stacked to [8, n, 64]. */
function separate(): Uint8Array {
  const g = createGraph("separate");
  const x = g.input("x", "float32", ["n", WIDTH]);
  const axes = g.initializer("axes", [1], new BigInt64Array([0n]));
  const outs = w1.map((_, e) => {
    let h = g.node("MatMul", [x, g.initializer(`w1_${e}`, [WIDTH, H1], w1[e]!)]);
    h = g.node("Relu", [g.node("Add", [h, g.initializer(`b1_${e}`, [H1], b1[e]!)])]);
    h = g.node("MatMul", [h, g.initializer(`w2_${e}`, [H1, H2], w2[e]!)]);
    h = g.node("Relu", [g.node("Add", [h, g.initializer(`b2_${e}`, [H2], b2[e]!)])]);
    return g.node("Unsqueeze", [h, axes]);
  });
  g.node("Concat", outs, { axis: 0 }, "y");
  g.output("y", "float32", [EXPERTS, "n", H2]);
  return g.toBytes({});
}

/** One wide first layer, one batched second layer. */
function fused(): Uint8Array {
  const g = createGraph("fused");
  const x = g.input("x", "float32", ["n", WIDTH]);
  const wide = new Float32Array(WIDTH * EXPERTS * H1);
  for (let e = 0; e < EXPERTS; e++)
    for (let i = 0; i < WIDTH; i++)
      wide.set(w1[e]!.subarray(i * H1, (i + 1) * H1), i * EXPERTS * H1 + e * H1);
  const bias = new Float32Array(EXPERTS * H1);
  for (let e = 0; e < EXPERTS; e++) bias.set(b1[e]!, e * H1);
  let h = g.node("MatMul", [x, g.initializer("w1", [WIDTH, EXPERTS * H1], wide)]);
  h = g.node("Relu", [g.node("Add", [h, g.initializer("b1", [EXPERTS * H1], bias)])]);
  h = g.node("Reshape", [
    h,
    g.initializer("shape", [3], new BigInt64Array([0n, BigInt(EXPERTS), BigInt(H1)])),
  ]);
  h = g.node("Transpose", [h], { perm: [1, 0, 2] });
  const stacked = new Float32Array(EXPERTS * H1 * H2);
  const stackedBias = new Float32Array(EXPERTS * H2);
  for (let e = 0; e < EXPERTS; e++) {
    stacked.set(w2[e]!, e * H1 * H2);
    stackedBias.set(b2[e]!, e * H2);
  }
  h = g.node("MatMul", [h, g.initializer("w2", [EXPERTS, H1, H2], stacked)]);
  h = g.node("Add", [h, g.initializer("b2", [EXPERTS, 1, H2], stackedBias)]);
  g.node("Relu", [h], {}, "y");
  g.output("y", "float32", [EXPERTS, "n", H2]);
  return g.toBytes({});
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;

const runs = intFlag(process.argv, "--runs", 200, 1);
const n = intFlag(process.argv, "--candidates", 200, 1);
ort.env.wasm.numThreads = 1;
ort.env.logLevel = "error";
const graphs = { separate: separate(), fused: fused() };
const sessions = await Promise.all(
  Object.values(graphs).map((b) => ort.InferenceSession.create(b, { graphOptimizationLevel: "all" })),
);
const feeds = { x: new ort.Tensor("float32", random(n * WIDTH, 7), [n, WIDTH]) };
const outs = await Promise.all(sessions.map((s) => s.run(feeds)));
const [a, b] = outs.map((o) => o.y!.data as Float32Array);
const diff = Math.max(...a!.map((x, i) => Math.abs(x - b![i]!)));
if (!(diff < 1e-4)) throw new Error(`bench: the two layouts differ by ${diff}`);
const times: number[][] = sessions.map(() => []);
for (let round = 0; round < runs + 20; round++)
  for (let k = 0; k < sessions.length; k++) {
    const i = (k + round) % sessions.length;
    const start = performance.now();
    await sessions[i]!.run(feeds);
    if (round >= 20) times[i]!.push(performance.now() - start);
  }
const [ps, pf] = times.map(median);
console.log(
  `load ${loadavg()[0]!.toFixed(2)} | ${n} rows | separate p50 ${ps!.toFixed(3)} ms | fused p50 ${pf!.toFixed(3)} ms | fused/separate ${(pf! / ps!).toFixed(3)} | max diff ${diff.toExponential(1)}`,
);
