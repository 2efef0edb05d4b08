/**
 * The first reranks of a fresh worker whose model loaded at start-up (module scope), with and
 * without the warm-up runs the worker makes while loading (edge/model/warm-up.ts): for requests
 * 1-3, the Server-Timing phases inside the worker (what the isolate's first request spends in
 * CPU, the Workers Free plan's 10 ms budget) and the client time, over --starts fresh
 * `wrangler dev` servers per setting, alternated. Model: out/bench/edge-model (bench:edge builds
 * it; --model default for out/bench/edge-model-default).
 *
 *   tsx bench/edge-first.ts [--starts 3] [--candidates 200] [--weights int8|float32] [--model default]
 */
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { loadavg } from "node:os";
import type { ModelManifest } from "../shared/manifest.ts";
import { requestBody } from "../test/fixtures/request-body.ts";
import { startDevServer, timedPost } from "./edge-wrangler.ts";
import { choiceFlag, intFlag, stringFlag } from "./timing.ts";

const argv = process.argv.slice(2);
const starts = intFlag(argv, "--starts", 3, 1);
const n = intFlag(argv, "--candidates", 200, 1);
const weights = choiceFlag(argv, "--weights", ["int8", "float32"]);
const model = stringFlag(argv, "--model", "reference");
const dir = model === "reference" ? "out/bench/edge-model" : `out/bench/edge-model-${model}`;

const manifest = JSON.parse(await readFile(`${dir}/manifest.json`, "utf8")) as ModelManifest;
const body = JSON.stringify(requestBody(manifest.features, n, n));
console.log(
  `${dir}, ${weights}, load average ${loadavg()
    .map((x) => x.toFixed(2))
    .join(" ")}`,
);

interface Sample {
  graph: string;
  warmUp: string;
  /** Requests 1-3: the sum of the worker's phases without `read`, and `infer` alone, ms. */
  compute: number[];
  infer: number[];
  client: number[];
}
const samples: Sample[] = [];
for (let s = 0; s < starts; s++)
  for (const graph of ["plain", "auto"] as const)
    for (const warmUpRuns of [0, undefined]) {
      const server = await startDevServer(dir, 8797, { weights, graph, warmUpRuns });
      const sample: Sample = {
        graph: graph === "auto" ? "factorised" : "plain",
        warmUp: warmUpRuns === 0 ? "none" : "default",
        compute: [],
        infer: [],
        client: [],
      };
      try {
        for (let i = 0; i < 3; i++) {
          const { ms, phases } = await timedPost(server.base, body);
          sample.client.push(Math.round(ms * 10) / 10);
          sample.compute.push(Object.entries(phases).reduce((a, [k, x]) => a + (k === "read" ? 0 : x), 0));
          sample.infer.push(phases.infer ?? Number.NaN);
        }
      } finally {
        await server.stop();
      }
      samples.push(sample);
      console.log(
        `${sample.graph} warm-up ${sample.warmUp}: requests 1-3 inside without read ${sample.compute.join(", ")} ms (infer ${sample.infer.join(", ")}); client ${sample.client.join(", ")} ms`,
      );
    }
await mkdir("out/bench", { recursive: true });
await writeFile(
  "out/bench/edge-first.json",
  `${JSON.stringify({ createdAt: new Date().toISOString(), dir, weights, candidates: n, loadAverage: loadavg(), samples }, null, 1)}\n`,
);
console.log("wrote out/bench/edge-first.json");
