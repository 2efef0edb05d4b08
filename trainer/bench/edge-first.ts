/**
 * The first reranks of a fresh worker whose model loaded at start-up (module scope): client time
 * of requests 1-3 and the median /healthz round trip, over --starts fresh `wrangler dev` servers,
 * on out/bench/edge-model (run bench:edge once to build it). Shows what the first request of an
 * isolate pays beyond a warm one.
 *
 *   tsx trainer/bench/edge-first.ts [--starts 3] [--candidates 200] [--weights float32|int8]
 */
import { readFile } from "node:fs/promises";
import { loadavg } from "node:os";
import type { ModelManifest } from "../../shared/manifest.ts";
import { requestBody } from "./edge-request-body.ts";
import { startDevServer } from "./edge-wrangler.ts";

const MODEL_DIR = "out/bench/edge-model";

function arg(flag: string, fallback: string): string {
  const at = process.argv.indexOf(flag);
  return at < 0 ? fallback : (process.argv[at + 1] ?? "");
}

const starts = Number(arg("--starts", "3"));
const n = Number(arg("--candidates", "200"));
const weights = arg("--weights", "float32");
if (!Number.isInteger(starts) || starts < 1) throw new Error("--starts: expected an integer >= 1");
if (!Number.isInteger(n) || n < 1) throw new Error("--candidates: expected an integer >= 1");
if (weights !== "float32" && weights !== "int8") throw new Error("--weights: expected float32 or int8");

const manifest = JSON.parse(await readFile(`${MODEL_DIR}/manifest.json`, "utf8")) as ModelManifest;
const body = JSON.stringify(requestBody(manifest.features, n, n));
console.log(
  `load average ${loadavg()
    .map((x) => x.toFixed(2))
    .join(" ")}`,
);
for (const graph of ["plain", "auto"] as const)
  for (let s = 0; s < starts; s++) {
    const server = await startDevServer(MODEL_DIR, 8797, { weights, graph });
    try {
      const times: number[] = [];
      const phases: string[] = [];
      for (let i = 0; i < 3; i++) {
        const start = performance.now();
        const res = await fetch(`${server.base}/v1/rerank`, { method: "POST", body });
        const json = (await res.json()) as { fallback?: boolean };
        times.push(performance.now() - start);
        if (json.fallback !== false) throw new Error(`bench: rerank fell back (${res.status})`);
        phases.push(res.headers.get("server-timing") ?? "");
      }
      const health: number[] = [];
      for (let i = 0; i < 9; i++) {
        const start = performance.now();
        await (await fetch(`${server.base}/healthz`)).arrayBuffer();
        health.push(performance.now() - start);
      }
      health.sort((a, b) => a - b);
      console.log(
        `${graph === "auto" ? "factorised" : "plain"} start ${s + 1}: reranks 1-3 client ${times.map((t) => t.toFixed(1)).join(", ")} ms; /healthz ${health[4]!.toFixed(1)} ms; first Server-Timing: ${phases[0]}`,
      );
    } finally {
      await server.stop();
    }
  }
