/**
 * npm run demo: the whole chain on built-in defaults, unattended.
 *   simulate -> train -> export -> wrangler dev (serving the new model) -> POST /v1/rerank
 *   -> print the reranked list with per-head scores -> stop the server.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { Command } from "commander";
import { devServerArgs } from "../../scripts/dev-config.ts";
import type { ModelManifest } from "../../shared/manifest.ts";
import { loadDataset } from "../data/load-dataset.ts";
import { readSpecFile } from "../data/read-spec.ts";
import { defaultValidFraction, splitRows } from "../data/split.ts";
import { exportModelDir } from "../export/export-model.ts";
import { DEFAULT_SIMULATE_OPTIONS, writeSimulation } from "../simulate/simulator.ts";
import { DEFAULT_TRAIN_ARGS } from "../train/train-args.ts";
import { runTraining } from "../workflows/train-and-report.ts";
import { headlineMetrics, metricsTable } from "./format.ts";
import { positiveInt, runCli } from "./run-cli.ts";

const program = new Command("demo")
  .description("Simulate logs, train, export, serve with wrangler dev and rerank one request.")
  .option("--out <dir>", "working folder", "out/demo")
  .option("--port <n>", "port for wrangler dev", positiveInt, 8787)
  .option("--epochs <n>", "training epochs", positiveInt, 4)
  .option("--arch <name>", "architecture", DEFAULT_TRAIN_ARGS.arch);

await runCli(async () => {
  const opts = program.parse().opts<{ out: string; port: number; epochs: number; arch: string }>();
  const dataDir = join(opts.out, "data");
  const modelDir = join(opts.out, "model");

  step("1/5 simulate");
  const sim = await writeSimulation(dataDir, DEFAULT_SIMULATE_OPTIONS);
  console.log(`  ${sim.rowCount} rows -> ${sim.dataPath}`);

  step(`2/5 train (${opts.arch})`);
  const summary = await runTraining({
    data: sim.dataPath,
    spec: sim.specPath,
    arch: opts.arch,
    out: modelDir,
    epochs: opts.epochs,
    onEpoch: (log) =>
      console.log(
        `  epoch ${log.epoch}  loss ${log.trainLoss.toFixed(4)}  ${headlineMetrics(log.validation)}`,
      ),
  });
  console.log(indent(metricsTable(summary.validation)));

  step("3/5 export");
  const { manifest } = await exportModelDir(modelDir);
  console.log(`  ${modelDir}/model.onnx ${manifest.files["model.onnx"]!.bytes} bytes, id ${manifest.id}`);

  step("4/5 serve (wrangler dev)");
  const server = startServer(modelDir, opts.port);
  try {
    const base = `http://127.0.0.1:${opts.port}`;
    await waitForHealth(base, server, 120_000);
    console.log(`  listening on ${base}`);

    step("5/5 rerank one request");
    const { request, truth } = await buildRequest(sim.dataPath, sim.specPath);
    const response = await fetch(`${base}/v1/rerank`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(request),
    });
    const body = (await response.json()) as RerankResponse;
    if (!response.ok) throw new Error(`rerank answered ${response.status}: ${JSON.stringify(body)}`);
    printResult(request, body, manifest, response.headers, truth);
  } finally {
    stopServer(server);
  }
});

interface RerankRequest {
  user: { id: string; features: Record<string, unknown> };
  context: { features: Record<string, unknown> };
  candidates: { id: string; features: Record<string, unknown> }[];
}

interface RerankResponse {
  model: { id: string; version: string };
  fallback: boolean;
  items: { id: string; score: number; heads: Record<string, number> }[];
}

/** A held-out logged request (a request_id group) as the site would send it, with its ground truth. */
async function buildRequest(
  dataPath: string,
  specPath: string,
): Promise<{ request: RerankRequest; truth: Map<string, Truth> }> {
  const spec = await readSpecFile(specPath);
  const data = await loadDataset(dataPath, spec);
  const { valid } = splitRows(
    data.rows.length,
    data.groups,
    defaultValidFraction(data.rows.length),
    DEFAULT_TRAIN_ARGS.seed,
  );
  const group = data.groups![valid[valid.length - 1]!];
  const idx = valid.filter((i) => data.groups![i] === group);
  const pick = (row: Record<string, unknown>, side: string) =>
    Object.fromEntries(spec.features.filter((f) => f.side === side).map((f) => [f.name, row[f.name]]));
  const first = data.rows[idx[0]!]!;
  const truth = new Map<string, Truth>();
  for (const i of idx) {
    truth.set(String(data.rows[i]!.item_id), {
      click: data.truth.click?.[i] ?? Number.NaN,
      purchase: data.truth.purchase?.[i] ?? Number.NaN,
    });
  }
  return {
    request: {
      user: { id: String(first.user_id), features: pick(first, "user") },
      context: { features: pick(first, "context") },
      candidates: idx.map((i) => ({
        id: String(data.rows[i]!.item_id),
        features: pick(data.rows[i]!, "item"),
      })),
    },
    truth,
  };
}

/** The simulator's true, position-free probabilities of one candidate. */
interface Truth {
  click: number;
  purchase: number;
}

function printResult(
  request: RerankRequest,
  body: RerankResponse,
  manifest: ModelManifest,
  headers: Headers,
  truth: Map<string, Truth>,
): void {
  const heads = manifest.heads.map((h) => h.name);
  const inputOrder = request.candidates.map((c) => c.id);
  console.log(`  model ${body.model.id} (${body.model.version}), fallback ${body.fallback}`);
  const timing = headers.get("server-timing");
  if (timing) console.log(`  server-timing: ${timing}`);
  console.log(
    `  ${"rank".padEnd(5)}${"item".padEnd(8)}${"was".padEnd(5)}${"score".padEnd(9)}${heads.map((h) => h.padEnd(10)).join("")}` +
      "| true click  true purchase",
  );
  body.items.forEach((item, rank) => {
    const was = inputOrder.indexOf(item.id);
    const cells = heads.map((h) => (item.heads[h] ?? Number.NaN).toFixed(4).padEnd(10)).join("");
    const t = truth.get(item.id);
    console.log(
      `  ${String(rank + 1).padEnd(5)}${item.id.padEnd(8)}${String(was + 1).padEnd(5)}${item.score.toFixed(4).padEnd(9)}${cells}` +
        `| ${(t?.click ?? Number.NaN).toFixed(4).padEnd(11)} ${(t?.purchase ?? Number.NaN).toFixed(4)}`,
    );
  });
  const weights = manifest.fusion.defaults.weights;
  const sorted = body.items.every((item, i) => i === 0 || body.items[i - 1]!.score >= item.score);
  const fusedOk = body.items.every((item) => {
    const expected = heads.reduce((s, h) => s + (weights[h] ?? 0) * (item.heads[h] ?? 0), 0);
    return Math.abs(expected - item.score) < 1e-6;
  });
  const changed = body.items.some((item, i) => item.id !== inputOrder[i]);
  console.log(
    `  order changed: ${changed ? "yes" : "no"}; sorted by fused score: ${sorted ? "yes" : "NO"}; score = Σ w·p (${Object.entries(
      weights,
    )
      .map(([h, w]) => `${h}=${w}`)
      .join(", ")}): ${fusedOk ? "yes" : "NO"}`,
  );
  if (body.fallback || !sorted || !fusedOk) throw new Error("the worker did not rerank by fused score");
}

function startServer(modelDir: string, port: number): ChildProcess {
  // Its own process group, so the whole tree (npm -> wrangler -> workerd) can be stopped.
  const child = spawn("npx", ["wrangler", ...devServerArgs(modelDir, port)], {
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "true" },
  });
  let log = "";
  const keep = (chunk: Buffer) => {
    log = (log + chunk.toString()).slice(-4000);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  (child as ChildProcess & { lastLog: () => string }).lastLog = () => log;
  return child;
}

function stopServer(child: ChildProcess): void {
  if (child.pid && child.exitCode === null) {
    try {
      process.kill(-child.pid, "SIGTERM");
    } catch {
      // Already gone.
    }
  }
}

async function waitForHealth(base: string, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      const log = (child as ChildProcess & { lastLog?: () => string }).lastLog?.() ?? "";
      throw new Error(
        `wrangler dev exited (${child.exitCode}): ${log.trim().split("\n").slice(-3).join(" | ")}`,
      );
    }
    try {
      const res = await fetch(`${base}/healthz`);
      if (res.ok) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`wrangler dev did not answer ${base}/healthz within ${timeoutMs / 1000} s`);
}

function step(title: string): void {
  console.log(`\n== ${title}`);
}

function indent(text: string): string {
  return text
    .split("\n")
    .map((l) => `  ${l}`)
    .join("\n");
}
