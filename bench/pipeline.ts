/**
 * npm run bench:pipeline: the wall time of each step of one nightly pipeline run
 * (trainer/pipeline/run.ts, docs/pipeline.md) on a simulated day of --rows rows, in local mode,
 * with `wrangler dev` serving the local state the run publishes to; and the publish-to-served
 * time, from the KV pointer write to the first /v1/rerank answer from the new model.
 *
 *  1. Data: the simulator (seed 1, its default world of 2,000 users and 1,000 items, 10 items a
 *     request) writes one log of 2 × --rows + --holdout rows, cut in order into day 1 (the first
 *     run's), day 2 (the measured run's) and the frozen holdout, as CSV under out/bench/pipeline/.
 *  2. A fresh local R2/KV state, and `wrangler dev` serving a bundle of the worker on it with
 *     MTRANK_MODEL_REFRESH_S=1 (scripts/local-cloudflare.ts), in its own process group.
 *  3. Run 1 on day 1: no champion, trained from scratch, published, smoke-tested: the champion.
 *  4. Run 2 on day 2, the measured one: warm-started from the champion, both scored on the
 *     holdout and the newest 10,000 rows, int8 graphs too, infra check, gate, publish, smoke test
 *     against the running wrangler dev. Each process is the one a `pipeline run` would be: the
 *     run opens its own local registry (its workerd start is in the lock step).
 *  5. Publish-to-served: from the gate's decision on, POST /v1/rerank every 50 ms (the traffic
 *     that makes the worker re-read its pointer); the time from the pointer write (the publish
 *     step's end) to the first answer whose x-model-version is the new model's.
 *
 * Aims (reported, not enforced): the measured run under 3 minutes, train included; publish to
 * served in seconds. The training is the pipeline's default (shared-bottom, train's default
 * epochs and batch for the day's size) unless --arch / --epochs say otherwise. Writes
 * out/bench/pipeline.json and prints a table. Exit 1 when a run did not publish.
 *
 *   npm run bench:pipeline [-- --rows 100000 --holdout 20000 --arch shared-bottom --epochs 4]
 */
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { dirname, join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Command } from "commander";
import {
  freePort,
  type LocalCloudflare,
  type LocalDevServer,
  localCloudflare,
  runBench,
  stopOnSignal,
} from "../scripts/local-cloudflare.ts";
import type { ModelManifest } from "../shared/manifest.ts";
import { positiveInt } from "../trainer/cli/run-cli.ts";
import { type PipelineConfig, parseConfig } from "../trainer/pipeline/config.ts";
import { fixedRequest } from "../trainer/pipeline/fixed-request.ts";
import type { RunRecord } from "../trainer/pipeline/record.ts";
import { type RunResult, runPipeline } from "../trainer/pipeline/run.ts";
import { simulate, toCsv } from "../trainer/simulate/simulator.ts";
import { machineInfo } from "./timing.ts";

const WORK = "out/bench/pipeline";
const STATE_DIR = ".mtrank/bench-pipeline";
const REFRESH_S = 1;
const POLL_MS = 50;
/** How long the poller waits for the new model after the run returned. */
const SERVED_WAIT_MS = 30_000;
const AIM_RUN_S = 180;

interface Args {
  rows: number;
  holdout: number;
  arch: string;
  epochs?: number;
  out: string;
}

function parseArgs(argv: string[]): Args {
  const program = new Command("bench:pipeline")
    .description(
      "Wall time of each pipeline step on a simulated day (local mode, wrangler dev serving), and publish-to-served.",
    )
    .option("--rows <n>", "rows in each simulated day", positiveInt, 100_000)
    .option("--holdout <n>", "rows in the frozen holdout", positiveInt, 20_000)
    .option("--arch <name>", "training.arch", "shared-bottom")
    .option("--epochs <n>", "training.epochs (default: train's, from the day's size)", positiveInt)
    .option("--out <file>", "JSON report", "out/bench/pipeline.json")
    .showHelpAfterError();
  return program.parse(argv, { from: "user" }).opts<Args>();
}

// ---- data ---------------------------------------------------------------------------------------

function writeData(args: Args): { seconds: number; rows: Record<string, number>; spec: string } {
  const t0 = performance.now();
  const listSize = 10;
  const total = 2 * args.rows + args.holdout;
  const { rows, spec } = simulate({ seed: 1, requests: Math.ceil(total / listSize), listSize });
  if (rows.length < total) throw new Error(`the simulator wrote ${rows.length} rows, wanted ${total}`);
  const parts: [string, number, number][] = [
    [join("day1", "part-0.csv"), 0, args.rows],
    [join("day2", "part-0.csv"), args.rows, 2 * args.rows],
    ["holdout.csv", 2 * args.rows, total],
  ];
  for (const [file, from, to] of parts) {
    mkdirSync(dirname(join(WORK, file)), { recursive: true });
    writeFileSync(join(WORK, file), toCsv(rows.slice(from, to)));
  }
  writeFileSync(join(WORK, "spec.json"), JSON.stringify(spec, null, 1));
  return {
    seconds: (performance.now() - t0) / 1000,
    rows: { day1: args.rows, day2: args.rows, holdout: args.holdout },
    spec: join(WORK, "spec.json"),
  };
}

function pipelineJson(args: Args, day: string, smokeUrl: string): Record<string, unknown> {
  return {
    data: { source: day, spec: "spec.json" },
    training: { arch: args.arch, ...(args.epochs ? { epochs: args.epochs } : {}) },
    evaluation: { holdout: "holdout.csv", newest: { rows: 10_000 } },
    // Consecutive slices of one simulated log: the warn levels stay the defaults; a stop would
    // end the measured run before training, which is not what is measured here.
    drift: { stop: { psi: 1, js: 0.5, unseen: 0.5, rate: 0.2 } },
    gate: {
      // The simulator's clicks are noisy (position effects): a 100k-row day scores click AUC ~0.59.
      floors: [
        { task: "click", metric: "auc", min: 0.55 },
        { task: "purchase", metric: "auc", min: 0.55 },
      ],
      changes: [{ task: "click", metric: "auc", direction: "higher", maxDrop: 0.02 }],
      int8: { maxAucDrop: 0.01 },
      size: { modelBytes: 33_554_432, int8Bytes: 16_777_216 },
    },
    registry: { local: { persistTo: "state" } },
    smoke: { url: smokeUrl, timeoutS: 60, pollS: 0.25 },
    workDir: "work",
  };
}

// ---- one run, with the worker polled from the gate on -------------------------------------------

interface Answer {
  at: number;
  status: number;
  version?: string;
}

interface Measured {
  result: RunResult;
  wallSeconds: number;
  /** performance.now() when the publish step (upload, read-back, pointer write) ended. */
  flippedAt?: number;
  answers: Answer[];
}

async function rerank(server: LocalDevServer, body: string): Promise<Answer> {
  try {
    const res = await fetch(`${server.base}/v1/rerank`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
      signal: AbortSignal.timeout(10_000),
    });
    await res.arrayBuffer();
    const version = res.headers.get("x-model-version");
    return { at: performance.now(), status: res.status, ...(version ? { version } : {}) };
  } catch {
    return { at: performance.now(), status: 0 };
  }
}

async function measuredRun(
  config: PipelineConfig,
  server: LocalDevServer,
  body: string | undefined,
): Promise<Measured> {
  const answers: Answer[] = [];
  let flippedAt: number | undefined;
  let polling: Promise<void> | undefined;
  let stop = false;
  let newVersion: string | undefined;
  const poll = async () => {
    if (!body) return;
    const deadline = () => (stop ? runEnded + SERVED_WAIT_MS : Number.POSITIVE_INFINITY);
    while (performance.now() < deadline()) {
      const a = await rerank(server, body);
      answers.push(a);
      if (stop && (newVersion === undefined || a.version === newVersion)) return;
      await sleep(POLL_MS);
    }
  };
  let runEnded = Number.POSITIVE_INFINITY;
  const t0 = performance.now();
  const result = await runPipeline(config, {
    log: (line) => {
      console.log(`  ${line}`);
      if (line.startsWith("gate ")) polling ??= poll();
      if (line.startsWith("publish ")) flippedAt = performance.now();
    },
  });
  const wallSeconds = (performance.now() - t0) / 1000;
  runEnded = performance.now();
  newVersion = result.record.published?.version;
  stop = true;
  await polling;
  return { result, wallSeconds, ...(flippedAt !== undefined ? { flippedAt } : {}), answers };
}

function stepsOf(record: RunRecord): Record<string, number> {
  return Object.fromEntries(record.steps.map((s) => [s.step, r2(s.seconds)]));
}

const r2 = (x: number) => Math.round(x * 100) / 100;

// ---- main ---------------------------------------------------------------------------------------

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const loadAverageBefore = loadavg();
  for (const sub of ["state", "work", "day1", "day2"])
    rmSync(join(WORK, sub), { recursive: true, force: true });
  mkdirSync(WORK, { recursive: true });
  console.log(`simulating 2 × ${args.rows} rows + a ${args.holdout}-row holdout under ${WORK}/…`);
  const data = writeData(args);

  const cf = localCloudflare({
    dir: STATE_DIR,
    persistTo: join(WORK, "state"),
    vars: { MTRANK_MODEL_REFRESH_S: String(REFRESH_S) },
  });
  stopOnSignal.registry = () => cf.close();
  try {
    return await withServer(args, cf, data, loadAverageBefore);
  } finally {
    await cf.close();
    stopOnSignal.registry = undefined;
  }
}

async function withServer(
  args: Args,
  cf: LocalCloudflare,
  data: ReturnType<typeof writeData>,
  loadAverageBefore: number[],
): Promise<number> {
  const port = await freePort();
  let inspectorPort = await freePort();
  while (inspectorPort === port) inspectorPort = await freePort();
  console.log(`bundling edge/index.ts and starting wrangler dev on 127.0.0.1:${port}…`);
  const server = await cf.startDev({ port, inspectorPort });
  let stopping: Promise<number[]> | undefined;
  const stop = () => {
    stopping ??= server.stop();
    return stopping;
  };
  stopOnSignal.server = stop;
  let first: Measured;
  let second: Measured;
  let leftovers: number[];
  try {
    const configFile = join(WORK, "pipeline.json");
    const config = (day: string) => {
      const raw = pipelineJson(args, day, server.base);
      writeFileSync(configFile, `${JSON.stringify(raw, null, 1)}\n`);
      return parseConfig(raw, resolve(configFile));
    };
    console.log("run 1 (day 1, no champion):");
    first = await measuredRun(config("day1"), server, undefined);
    const champion = first.result.record.published;
    if (!champion) throw new Error(`run 1 did not publish: ${first.result.record.reason}`);
    const manifestObject = await cf.registry.get(`${champion.prefix}manifest.json`);
    if (!manifestObject) throw new Error(`${champion.prefix}manifest.json is not in the local state`);
    const manifest = JSON.parse(new TextDecoder().decode(manifestObject.bytes)) as ModelManifest;
    const body = JSON.stringify(fixedRequest(manifest, "bench-pipeline"));
    console.log("run 2 (day 2, warm-started from run 1's model; measured):");
    second = await measuredRun(config("day2"), server, body);
  } finally {
    leftovers = await stop();
    stopOnSignal.server = undefined;
  }

  const r = second.result.record;
  const published = r.published;
  const firstNew =
    published && second.flippedAt !== undefined
      ? second.answers.find((a) => a.version === published.version && a.at >= second.flippedAt!)
      : undefined;
  const publishToServedMs =
    firstNew && second.flippedAt !== undefined ? Math.round(firstNew.at - second.flippedAt) : undefined;
  const beforeNew = second.answers.filter((a) => !firstNew || a.at < firstNew.at);
  const pollErrors = second.answers.filter((a) => a.status !== 200).length;
  const run = (m: Measured) => ({
    outcome: m.result.record.outcome,
    reason: m.result.record.reason,
    wallSeconds: r2(m.wallSeconds),
    steps: stepsOf(m.result.record),
    training: m.result.record.training && {
      mode: m.result.record.training.mode,
      arch: m.result.record.training.arch,
      trainRows: m.result.record.training.trainRows,
      validRows: m.result.record.training.validRows,
      bestEpoch: m.result.record.training.bestEpoch,
    },
    drift: m.result.record.drift?.level,
    gate: m.result.record.gate?.blessed,
    candidate: m.result.record.candidate,
    smoke: m.result.record.smoke && {
      passed: m.result.record.smoke.passed,
      servedAfterS: m.result.record.smoke.servedAfterS,
      seconds: r2(m.result.record.smoke.seconds),
    },
    record: m.result.files.json,
  });
  const report = {
    createdAt: new Date().toISOString(),
    args,
    machine: { ...machineInfo(), loadAverageBefore },
    data,
    worker: {
      vars: { MTRANK_MODEL_REFRESH_S: String(REFRESH_S) },
      bundleMs: Math.round(server.bundleMs),
      readyMs: Math.round(server.readyMs),
      reloads: server.reloads(),
      processesLeft: leftovers,
    },
    first: run(first),
    measured: run(second),
    publishToServed: {
      ms: publishToServedMs,
      note: `from the end of the publish step (the KV pointer written) to the first POST /v1/rerank answer with the new x-model-version; rerank every ${POLL_MS} ms from the gate's decision on; the worker re-reads its pointer every MTRANK_MODEL_REFRESH_S=${REFRESH_S} s (60 s by default in production, where KV also takes up to ~60 s to reach every location)`,
      polls: second.answers.length,
      pollErrors,
      answersBeforeTheNewModel: beforeNew.length,
    },
    aims: {
      runUnder3Minutes: second.wallSeconds <= AIM_RUN_S,
      publishToServedInSeconds: publishToServedMs !== undefined && publishToServedMs < 10_000,
    },
  };
  mkdirSync(dirname(resolve(args.out)), { recursive: true });
  writeFileSync(args.out, `${JSON.stringify(report, null, 1)}\n`);
  printTable(report);
  console.log(`\nwrote ${args.out}`);
  return first.result.record.outcome === "published" && r.outcome === "published" && leftovers.length === 0
    ? 0
    : 1;
}

function printTable(report: {
  createdAt: string;
  args: Args;
  machine: { cpus: number; loadAverageBefore: number[] };
  data: { seconds: number };
  worker: { bundleMs: number; readyMs: number };
  first: { wallSeconds: number; steps: Record<string, number>; outcome: string };
  measured: {
    wallSeconds: number;
    steps: Record<string, number>;
    outcome: string;
    training?: { mode: string; trainRows: number; bestEpoch: number } | undefined;
  };
  publishToServed: { ms: number | undefined };
}): void {
  const names = [...new Set([...Object.keys(report.first.steps), ...Object.keys(report.measured.steps)])];
  const cell = (x: number | undefined) => (x === undefined ? "-" : `${x.toFixed(1)} s`);
  console.log(
    `\n${report.createdAt.slice(0, 10)}: ${report.args.rows}-row day, ${report.args.arch}, ${report.machine.cpus} CPUs, load avg ${report.machine.loadAverageBefore.map((x) => x.toFixed(1)).join(" ")} before; simulate ${cell(report.data.seconds)}, wrangler dev bundle ${cell(report.worker.bundleMs / 1000)} + start ${cell(report.worker.readyMs / 1000)}`,
  );
  console.log(`${"step".padEnd(18)} ${"run 1 (scratch)".padStart(16)} ${"run 2 (measured)".padStart(17)}`);
  for (const name of names)
    console.log(
      `${name.padEnd(18)} ${cell(report.first.steps[name]).padStart(16)} ${cell(report.measured.steps[name]).padStart(17)}`,
    );
  console.log(
    `${"whole run".padEnd(18)} ${cell(report.first.wallSeconds).padStart(16)} ${cell(report.measured.wallSeconds).padStart(17)}`,
  );
  console.log(
    `${"outcome".padEnd(18)} ${report.first.outcome.padStart(16)} ${report.measured.outcome.padStart(17)}`,
  );
  const t = report.measured.training;
  if (t) console.log(`run 2 trained: ${t.mode}, ${t.trainRows} rows, best epoch ${t.bestEpoch}`);
  console.log(
    `publish → served: ${report.publishToServed.ms === undefined ? "not seen" : `${report.publishToServed.ms} ms`} (pointer written → first /v1/rerank answer from the new model)`,
  );
}

await runBench("bench:pipeline", main);
