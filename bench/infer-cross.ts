/**
 * What cross layers (--cross) cost at serving time: onnxruntime-web (wasm, one thread, as the
 * worker runs it) session.run of the default MMoE (infer-model.ts defaultMmoe) against the same
 * network with `--cross 2` (rank 16) stacked in front and in the parallel layout, float32 and
 * int8, plain graphs and factorised ones (none for stacked cross layers), at --candidates rows.
 * Every configuration runs round-robin in one loop, so load from other processes falls on all
 * alike; figures are ratios to the model without cross layers, same weights and graph kind.
 * Fresh cross layers are the identity and fresh cross towers add nothing, so every model gives
 * the same outputs (checked), and the time is the layers' arithmetic alone. Writes
 * out/bench/infer-cross.json.
 *
 *   npm run bench:cross [-- --runs 200] [-- --candidates 200]
 */
import { mkdir, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { performance } from "node:perf_hooks";
import * as ort from "onnxruntime-web";
import { defaultMmoe } from "../test/fixtures/synthetic-model.ts";
import { buildFactorisedOnnx, buildOnnx } from "../trainer/export/export-model.ts";
import { factorisedLayout } from "../trainer/export/factorised-layout.ts";
import { factorisedFeeds, plainFeeds } from "../trainer/export/onnx-session.ts";
import { requestProbeBatch } from "../trainer/export/probe-batch.ts";
import { intFlag, machineInfo, quantile } from "./timing.ts";

const OUT = "out/bench/infer-cross.json";
const r3 = (x: number) => Math.round(x * 1000) / 1000;

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const runs = intFlag(argv, "--runs", 200, 5);
  const candidates = intFlag(argv, "--candidates", 200, 1);
  ort.env.wasm.numThreads = 1;
  ort.env.logLevel = "error";
  const models = {
    none: await defaultMmoe({ cross: 0 }),
    stacked: await defaultMmoe({ cross: 2, crossRank: 16 }),
    parallel: await defaultMmoe({ cross: 2, crossRank: 16, crossLayout: "parallel" }),
  };
  const batch = requestProbeBatch(models.none.encoder, candidates, candidates);
  const layout = factorisedLayout(models.none.encoder);
  const list = Object.entries(models).flatMap(([name, model]) =>
    (["float32", "int8"] as const).flatMap((weights) => {
      const plain = buildOnnx(model, weights);
      const graphs = [
        {
          name: `${weights} plain ${name}`,
          kind: `${weights} plain`,
          bytes: plain.bytes,
          feeds: plainFeeds(plain.manifest, batch),
        },
      ];
      if (name === "stacked") return graphs;
      const f = buildFactorisedOnnx(model, layout, weights);
      const info = { inputs: f.inputs, ...layout };
      const feeds = factorisedFeeds({ features: plain.manifest.features, factorised: info }, batch);
      return [
        ...graphs,
        { name: `${weights} factorised ${name}`, kind: `${weights} factorised`, bytes: f.bytes, feeds },
      ];
    }),
  );
  const sessions = await Promise.all(list.map((c) => ort.InferenceSession.create(c.bytes)));
  const feeds = list.map((c) => c.feeds);
  const times: number[][] = list.map(() => []);
  const outputs: Float32Array[] = [];
  const warmup = Math.max(10, Math.round(runs / 10));
  for (let round = 0; round < warmup + runs; round++)
    for (let k = 0; k < list.length; k++) {
      const i = (k + round) % list.length;
      const start = performance.now();
      const out = await sessions[i]!.run(feeds[i]!);
      const ms = performance.now() - start;
      if (round < warmup) outputs[i] = out.click!.data as Float32Array;
      else times[i]!.push(ms);
    }
  // Each configuration's baseline: the model without cross layers, same weights and graph kind.
  const baseOf = list.map((c) => list.findIndex((o) => o.kind === c.kind));
  // Same weights apart from the identity cross layers: same outputs, per kind.
  for (const [i, c] of list.entries()) {
    const j = baseOf[i]!;
    const diff = Math.max(...outputs[i]!.map((x, r) => Math.abs(x - outputs[j]![r]!)));
    if (!(diff <= 0.02)) throw new Error(`bench: ${c.name} differs from ${list[j]!.name} by ${diff}`);
  }
  const rows = list.map((c, i) => ({
    name: c.name,
    bytes: c.bytes.length,
    runP50: r3(quantile(times[i]!, 0.5)),
    runP99: r3(quantile(times[i]!, 0.99)),
    ratioP50: r3(quantile(times[i]!, 0.5) / quantile(times[baseOf[i]!]!, 0.5)),
  }));
  const report = { createdAt: new Date().toISOString(), machine: machineInfo(), runs, candidates, rows };
  await mkdir(dirname(OUT), { recursive: true });
  await writeFile(OUT, `${JSON.stringify(report, null, 1)}\n`);
  console.log(`session.run at ${candidates} candidates, ${runs} runs each, round-robin`);
  console.log("graph                       bytes      p50 ms   p99 ms   p50 vs none");
  for (const r of rows)
    console.log(
      `${r.name.padEnd(27)} ${String(r.bytes).padEnd(10)} ${r.runP50.toFixed(3).padEnd(8)} ${r.runP99.toFixed(3).padEnd(8)} x${r.ratioP50.toFixed(2)}`,
    );
  console.log(`wrote ${OUT}`);
}

await main();
