/**
 * npm run bench:load-edge: bounded local load against `wrangler dev` serving from wrangler's LOCAL
 * R2 + KV (scripts/local-cloudflare.ts), with a KV pointer flip in the middle.
 *
 *  1. Two model directories (default: two MMoE models trained for one epoch on the simulator's log
 *     with seeds 1 and 2, exported with --int8, under out/bench/load-edge/; reused on later runs,
 *     --retrain rebuilds them; or --model-a / --model-b) are published content-addressed to a
 *     fresh local state (.mtrank/bench-load-edge/state) and read back, and KV models/current =
 *     model A's prefix: scripts/local-cloudflare.ts, through the pipeline's local registry (a
 *     Miniflare over the `--persist-to` folder, as `wrangler r2 object put --local` opens it).
 *  2. `wrangler dev` serves a bundle of edge/index.ts (the production entry, whose bundled model
 *     is the fallback) on that state with MTRANK_MODEL_WEIGHTS=<--weights> and
 *     MTRANK_MODEL_REFRESH_S=1, in its own process group, stopped whole on exit, error or SIGINT.
 *  3. Warm-up (not counted) until the worker answers with model A.
 *  4. Load: --clients closed-loop clients send --requests POST /v1/rerank of --candidates
 *     candidates each (bodies from model A's manifest features, bench/rerank-bodies.ts) to
 *     127.0.0.1 only. When request requests/2 is issued, models/current is flipped to model B
 *     (the clients keep going). Should the requests run out before any answer comes from model B,
 *     the load goes on until one does (at most --requests more, and 60 s after the write).
 *  5. Memory of the isolate serving the int8 model, before and after the load (bench/isolate-memory.ts
 *     says what each figure measures), and the RSS of wrangler dev's two workerd processes (the
 *     runtime that runs the isolate, and wrangler's proxy in front of it).
 *
 * Fails (exit 1) on any 5xx, transport error, other non-200 status, fallback answer, a model
 * version other than A's and B's, or no switch to B. The isolate-memory aim (<= 32 MiB of the
 * 128 MiB limit) is reported, not enforced. Writes out/bench/load-edge.json and prints a table.
 *
 *   npm run bench:load-edge [-- --clients 8 --requests 3000 --candidates 200 --weights int8]
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { dirname, join, resolve } from "node:path";
import { Command, InvalidArgumentError, Option } from "commander";
import {
  freePort,
  type LocalCloudflare,
  type LocalDevServer,
  localCloudflare,
  modelAddress,
  type PublishedModel,
  processMemory,
  runBench,
  stopOnSignal,
} from "../scripts/local-cloudflare.ts";
import type { ModelManifest } from "../shared/manifest.ts";
import { positiveInt } from "../trainer/cli/run-cli.ts";
import { type HeapUsage, Inspector, type IsolateMemory } from "./isolate-memory.ts";
import { featureSignature, rerankBodies } from "./rerank-bodies.ts";
import { machineInfo, quantile } from "./timing.ts";

const WORK = "out/bench/load-edge";
const STATE_DIR = ".mtrank/bench-load-edge";
const MiB = 2 ** 20;
const ISOLATE_LIMIT_MIB = 128;
const ISOLATE_AIM_MIB = 32;
/** Distinct request bodies sent in turn. */
const BODIES = 16;
const REQUEST_TIMEOUT_MS = 30_000;
/** After the pointer write, how long the load may run past --requests waiting for model B. */
const SWITCH_WAIT_MS = 60_000;

type Weights = "int8" | "float32";

interface Args {
  clients: number;
  requests: number;
  candidates: number;
  weights: Weights;
  out: string;
  modelA?: string;
  modelB?: string;
  retrain: boolean;
  refreshS: number;
  maxSeconds: number;
  /** MTRANK_MANIFEST_MAX_BYTES, for models whose vocabularies outgrow the worker's default. */
  manifestMaxBytes?: number;
}

function parseArgs(argv: string[]): Args {
  const program = new Command("bench:load-edge")
    .description(
      "Bounded local load against wrangler dev serving from local R2/KV, with a KV pointer flip in the middle.",
    )
    .option("--clients <n>", "concurrent clients (closed loop)", positiveInt, 8)
    .option("--requests <n>", "POST /v1/rerank requests in all (at least 2)", positiveInt, 3000)
    .option("--candidates <n>", "candidates per request", positiveInt, 200)
    .addOption(
      new Option("--weights <kind>", "graph the worker serves from R2 (MTRANK_MODEL_WEIGHTS)")
        .choices(["int8", "float32"])
        .default("int8"),
    )
    .option("--out <file>", "JSON report", "out/bench/load-edge.json")
    .option("--model-a <dir>", `model served first (default: trained under ${WORK}/model-a)`)
    .option("--model-b <dir>", `model flipped to (default: trained under ${WORK}/model-b)`)
    .option("--retrain", "rebuild the default models even if they exist", false)
    .option(
      "--refresh-s <n>",
      "MTRANK_MODEL_REFRESH_S: seconds between the worker's pointer reads",
      positiveInt,
      1,
    )
    .option("--max-seconds <n>", "limit on the load phase, seconds", positiveInt, 600)
    .option(
      "--manifest-max-bytes <n>",
      "MTRANK_MANIFEST_MAX_BYTES: the largest manifest.json the worker downloads (default: the worker's)",
      positiveInt,
    )
    .showHelpAfterError();
  const o = program.parse(argv, { from: "user" }).opts<Args>();
  if (o.requests < 2) throw new InvalidArgumentError("--requests: at least 2 (the flip is at half)");
  if (o.candidates > 1000) throw new InvalidArgumentError("--candidates: the worker takes at most 1000");
  return o;
}

/** The worker's [vars] for the run. */
function workerVars(args: Args): Record<string, string> {
  return {
    MTRANK_MODEL_WEIGHTS: args.weights,
    MTRANK_MODEL_REFRESH_S: String(args.refreshS),
    ...(args.manifestMaxBytes ? { MTRANK_MANIFEST_MAX_BYTES: String(args.manifestMaxBytes) } : {}),
  };
}

// ---- models -------------------------------------------------------------------------------------

function run(command: string, args: string[], timeoutMs = 600_000): void {
  const r = spawnSync(command, args, {
    stdio: ["ignore", "pipe", "pipe"],
    timeout: timeoutMs,
    encoding: "utf8",
  });
  if (r.status !== 0)
    throw new Error(
      `${command} ${args.join(" ")} failed (${r.status ?? r.signal}): ${`${r.stderr}${r.stdout}`.trim().split("\n").slice(-5).join(" | ")}`,
    );
}

function weightsFile(weights: Weights): string {
  return weights === "int8" ? "model.int8.onnx" : "model.onnx";
}

function hasModel(dir: string, weights: Weights): boolean {
  return existsSync(join(dir, "manifest.json")) && existsSync(join(dir, weightsFile(weights)));
}

/** The two model directories: given, or trained (simulate -> train --arch mmoe -> export --int8). */
function modelDirs(args: Args): [string, string] {
  if (args.modelA || args.modelB) {
    if (!args.modelA || !args.modelB) throw new Error("--model-a and --model-b go together");
    for (const dir of [args.modelA, args.modelB])
      if (!hasModel(dir, args.weights))
        throw new Error(
          `${dir} lacks manifest.json or ${weightsFile(args.weights)} (npm run export -- --model ${dir} --int8)`,
        );
    return [args.modelA, args.modelB];
  }
  const sim = join(WORK, "sim");
  const dirs: [string, string] = [join(WORK, "model-a"), join(WORK, "model-b")];
  if (!args.retrain && dirs.every((d) => hasModel(d, "int8") && hasModel(d, "float32"))) return dirs;
  console.log(`training two small MMoE models (1 epoch, seeds 1 and 2) under ${WORK}/…`);
  run("npx", ["tsx", "trainer/cli/simulate.ts", "--out", sim, "--requests", "2000"]);
  dirs.forEach((dir, i) => {
    rmSync(dir, { recursive: true, force: true });
    run("npx", [
      "tsx",
      "trainer/cli/train.ts",
      ...["--data", join(sim, "data.csv"), "--spec", join(sim, "spec.json"), "--out", dir],
      ...["--arch", "mmoe", "--epochs", "1", "--seed", String(i + 1)],
    ]);
    run("npx", ["tsx", "trainer/cli/export.ts", "--model", dir, "--int8"]);
  });
  return dirs;
}

// ---- ports, memory ------------------------------------------------------------------------------

interface MemoryPoint {
  /** VmRSS / VmHWM of wrangler dev's workerd processes, by role. */
  workerd: Partial<Record<"runtime" | "proxy", { pid: number; rss: number; hwm: number }>>;
  isolate?: IsolateMemory;
  isolateError?: string;
}

async function memoryPoint(server: LocalDevServer, inspector: Inspector | undefined): Promise<MemoryPoint> {
  const point: MemoryPoint = { workerd: {} };
  for (const { pid, role } of server.workerdProcesses()) {
    const mem = processMemory(pid);
    if (mem) point.workerd[role] = { pid, ...mem };
  }
  if (inspector)
    try {
      point.isolate = await inspector.isolateMemory();
    } catch (error) {
      point.isolateError = (error as Error).message;
    }
  else point.isolateError = "no inspector connection";
  return point;
}

// ---- load ---------------------------------------------------------------------------------------

interface Sample {
  /** Issue order. */
  i: number;
  /** ms from the load's start to the request's start, and to its answer's last byte. */
  start: number;
  end: number;
  /** HTTP status; 0 = transport error (no response). */
  status: number;
  version?: string;
  /** model.id in the body (200s). */
  id?: string;
  fallback: boolean;
  /** Sum of the worker's Server-Timing phases, ms. */
  inside?: number;
  /** The body disagreed with the headers or had the wrong number of items. */
  mismatch?: string;
  error?: string;
}

interface Flip {
  requestIndex: number;
  /** ms from the load's start. */
  requestedAt: number;
  writtenAt?: number;
  putMs?: number;
  error?: string;
}

interface LoadResult {
  samples: Sample[];
  wallMs: number;
  flip: Flip | undefined;
  /** Requests sent past --requests while waiting for model B. */
  extra: number;
  timedOut: boolean;
  /** Max VmRSS of the runtime and proxy workerd (sampled every 250 ms). */
  rssMax: { runtime: number; proxy: number };
  heapMax: HeapUsage | undefined;
  heapSamples: number;
  /** One a second: ms into the load, V8 heap used/committed, backing stores, runtime and proxy RSS. */
  series: { t: number; used: number; committed: number; buffers: number; rss: number; proxyRss: number }[];
}

async function rerank(base: string, body: string): Promise<Omit<Sample, "i" | "start" | "end">> {
  const res = await fetch(`${base}/v1/rerank`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body,
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  const text = await res.text();
  let inside = 0;
  for (const part of (res.headers.get("server-timing") ?? "").split(",")) {
    const m = /^\s*([\w-]+);dur=([\d.]+)/.exec(part);
    if (m) inside += Number(m[2]);
  }
  const sample: Omit<Sample, "i" | "start" | "end"> = {
    status: res.status,
    version: res.headers.get("x-model-version") ?? undefined,
    fallback: res.headers.get("x-mtrank-fallback") === "1",
    inside,
  };
  if (res.status === 200) {
    try {
      const json = JSON.parse(text) as { model?: { id?: string; version?: string }; items?: unknown[] };
      sample.id = json.model?.id;
      if (json.model?.version !== sample.version)
        sample.mismatch = "body model.version differs from the header";
    } catch {
      sample.mismatch = "body is not JSON";
    }
  }
  return sample;
}

async function runLoad(
  args: Args,
  server: LocalDevServer,
  inspector: Inspector | undefined,
  bodies: string[],
  versionB: string,
  flipTo: () => Promise<void>,
): Promise<LoadResult> {
  const total = args.requests;
  const flipAt = Math.floor(total / 2);
  const samples: Sample[] = [];
  let next = 0;
  let sawB = false;
  let timedOut = false;
  let flip: Flip | undefined;
  let flipDone: Promise<void> | undefined;
  const t0 = performance.now();
  const now = () => performance.now() - t0;
  const deadline = args.maxSeconds * 1000;

  // Samplers: workerd RSS every 250 ms, the isolate's heap every second (one CDP call at a time).
  const rssMax = { runtime: 0, proxy: 0 };
  let heapMax: HeapUsage | undefined;
  let heapSamples = 0;
  let heapBusy = false;
  const rssNow = { runtime: 0, proxy: 0 };
  const series: LoadResult["series"] = [];
  const processes = server.workerdProcesses();
  const rssTimer = setInterval(() => {
    for (const { pid, role } of processes) {
      const m = processMemory(pid);
      if (!m) continue;
      rssNow[role] = m.rss;
      rssMax[role] = Math.max(rssMax[role], m.rss);
    }
  }, 250);
  const heapTimer = setInterval(() => {
    if (!inspector || heapBusy) return;
    heapBusy = true;
    inspector
      .heapUsage()
      .then((h) => {
        heapSamples++;
        series.push({
          t: Math.round(now()),
          used: h.usedSize,
          committed: h.totalSize,
          buffers: h.backingStorageSize,
          rss: rssNow.runtime,
          proxyRss: rssNow.proxy,
        });
        heapMax = heapMax
          ? {
              usedSize: Math.max(heapMax.usedSize, h.usedSize),
              totalSize: Math.max(heapMax.totalSize, h.totalSize),
              backingStorageSize: Math.max(heapMax.backingStorageSize, h.backingStorageSize),
              embedderHeapUsedSize: Math.max(heapMax.embedderHeapUsedSize, h.embedderHeapUsedSize),
            }
          : h;
      })
      .catch(() => undefined)
      .finally(() => {
        heapBusy = false;
      });
  }, 1000);

  const take = (): number | undefined => {
    if (now() > deadline) {
      timedOut = true;
      return undefined;
    }
    if (next >= total) {
      // No answer from B yet: keep the load on (bounded) until one comes.
      if (sawB || next >= 2 * total) return undefined;
      if (flip?.writtenAt !== undefined && now() - flip.writtenAt > SWITCH_WAIT_MS) return undefined;
      if (flip?.error) return undefined;
    }
    return next++;
  };

  const startFlip = (i: number) => {
    const f: Flip = { requestIndex: i, requestedAt: now() };
    flip = f;
    const started = performance.now();
    flipDone = flipTo().then(
      () => {
        f.writtenAt = now();
        f.putMs = performance.now() - started;
      },
      (error: unknown) => {
        f.error = (error as Error).message;
      },
    );
  };

  try {
    await Promise.all(
      Array.from({ length: args.clients }, async () => {
        for (let i = take(); i !== undefined; i = take()) {
          if (i === flipAt) startFlip(i);
          const start = now();
          try {
            const r = await rerank(server.base, bodies[i % bodies.length]!);
            samples.push({ i, start, end: now(), ...r });
            if (r.status === 200 && r.version === versionB) sawB = true;
          } catch (error) {
            const e = error as Error & { cause?: { code?: string; message?: string } };
            samples.push({
              i,
              start,
              end: now(),
              status: 0,
              fallback: false,
              error: `${e.name}: ${e.cause?.code ?? e.cause?.message ?? e.message}`,
            });
          }
        }
      }),
    );
    const wallMs = now();
    await flipDone;
    return {
      samples,
      wallMs,
      flip,
      extra: Math.max(0, next - total),
      timedOut,
      rssMax,
      heapMax,
      heapSamples,
      series,
    };
  } finally {
    clearInterval(rssTimer);
    clearInterval(heapTimer);
  }
}

// ---- report -------------------------------------------------------------------------------------

const r1 = (x: number) => Math.round(x * 10) / 10;
const r2 = (x: number) => Math.round(x * 100) / 100;
const mib = (bytes: number | undefined) => (bytes === undefined ? undefined : r2(bytes / MiB));

function stats(times: number[]) {
  if (times.length === 0) return undefined;
  return {
    p50: r2(quantile(times, 0.5)),
    p90: r2(quantile(times, 0.9)),
    p99: r2(quantile(times, 0.99)),
    max: r2(Math.max(...times)),
    mean: r2(times.reduce((a, b) => a + b, 0) / times.length),
  };
}

function countBy<T>(items: T[], key: (t: T) => string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const t of items) out[key(t)] = (out[key(t)] ?? 0) + 1;
  return out;
}

function memoryJson(p: MemoryPoint | undefined) {
  if (!p) return undefined;
  const iso = p.isolate;
  return {
    workerd: Object.fromEntries(
      Object.entries(p.workerd).map(([role, w]) => [
        role,
        { pid: w.pid, rssMiB: mib(w.rss), hwmMiB: mib(w.hwm) },
      ]),
    ),
    isolate: iso && {
      heapUsedMiB: mib(iso.usedSize),
      heapCommittedMiB: mib(iso.totalSize),
      backingStorageMiB: mib(iso.backingStorageSize),
      wasmMemoryMiB: iso.wasmMemories.map((b) => mib(b)),
      arrayBuffers: { count: iso.arrayBuffers.count, MiB: mib(iso.arrayBuffers.bytes) },
      estimateMiB: mib(iso.estimate),
    },
    ...(p.isolateError ? { isolateError: p.isolateError } : {}),
  };
}

// ---- main ---------------------------------------------------------------------------------------

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const loadAverageBefore = loadavg();
  const [dirA, dirB] = modelDirs(args);
  const addrA = modelAddress(dirA);
  const addrB = modelAddress(dirB);
  if (addrA.sha256 === addrB.sha256) throw new Error(`${dirA} and ${dirB} are the same model`);
  if (addrA.manifest.version === addrB.manifest.version)
    throw new Error("the two models have the same version: x-model-version cannot tell them apart");
  if (featureSignature(addrA.manifest) !== featureSignature(addrB.manifest))
    throw new Error(
      `${dirA} and ${dirB} take different features: one set of request bodies cannot serve both`,
    );

  // A fresh local state each run: R2 and KV hold exactly the two models and the pointer.
  rmSync(join(STATE_DIR, "state"), { recursive: true, force: true });
  const cf = localCloudflare({
    dir: STATE_DIR,
    vars: workerVars(args),
  });
  stopOnSignal.registry = () => cf.close();
  try {
    return await publishAndRun(args, cf, [dirA, dirB], [addrA, addrB], loadAverageBefore);
  } finally {
    await cf.close();
    stopOnSignal.registry = undefined;
  }
}

async function publishAndRun(
  args: Args,
  cf: LocalCloudflare,
  [dirA, dirB]: [string, string],
  [addrA]: [ReturnType<typeof modelAddress>, ReturnType<typeof modelAddress>],
  loadAverageBefore: number[],
): Promise<number> {
  console.log(`publishing ${dirA} and ${dirB} to local R2 (${cf.persistTo})…`);
  const publishStarted = performance.now();
  const pubA = await cf.publishModelDir(dirA);
  const pubB = await cf.publishModelDir(dirB);
  await cf.setPointer(pubA);
  const pointer = await cf.getPointer();
  if (pointer !== pubA.prefix)
    throw new Error(`KV models/current reads back "${pointer}", wrote "${pubA.prefix}"`);
  const publishMs = performance.now() - publishStarted;

  const port = await freePort();
  let inspectorPort = await freePort();
  while (inspectorPort === port) inspectorPort = await freePort();
  console.log(`bundling edge/index.ts and starting wrangler dev on 127.0.0.1:${port} (${args.weights})…`);
  const server = await cf.startDev({ port, inspectorPort });
  let stopping: Promise<number[]> | undefined;
  const stop = () => {
    stopping ??= server.stop();
    return stopping;
  };
  stopOnSignal.server = stop;

  let inspector: Inspector | undefined;
  let inspectorError: string | undefined;
  let ready: MemoryPoint | undefined;
  let before: MemoryPoint | undefined;
  let after: MemoryPoint | undefined;
  let load: LoadResult;
  let warmUp: { requests: number; ms: number; versions: Record<string, number> };
  let leftovers: number[] = [];
  let reloads = 0;
  const bodies = rerankBodies(addrA.manifest, args.candidates, BODIES);
  try {
    try {
      inspector = await Inspector.connect(server.inspectorUrl);
    } catch (error) {
      inspectorError = (error as Error).message;
    }
    ready = await memoryPoint(server, inspector);

    // Warm-up: the isolate starts on its bundled model and loads A on its first pointer read.
    const warmStarted = performance.now();
    const seen: string[] = [];
    let servedA = 0;
    while (servedA < 4 * args.clients) {
      if (performance.now() - warmStarted > 120_000)
        throw new Error(
          `warm-up: no answers from model A (${pubA.version}) within 120 s; saw ${[...new Set(seen)]}`,
        );
      const results = await Promise.all(
        Array.from({ length: args.clients }, (_, k) => rerank(server.base, bodies[k % bodies.length]!)),
      );
      for (const r of results) {
        if (r.status >= 500) throw new Error(`warm-up: rerank answered ${r.status}`);
        seen.push(r.version ?? `status ${r.status}`);
        if (r.status === 200 && r.version === pubA.version && !r.fallback) servedA++;
      }
      if (servedA === 0) await new Promise((r) => setTimeout(r, 250));
    }
    warmUp = {
      requests: seen.length,
      ms: Math.round(performance.now() - warmStarted),
      versions: countBy(seen, (v) => v),
    };
    before = await memoryPoint(server, inspector);
    // The heap walk above makes the next answer slow (seen: 0.4-2 s, once): settle before timing.
    const settle = await Promise.all(
      Array.from({ length: 2 * args.clients }, (_, k) => rerank(server.base, bodies[k % bodies.length]!)),
    );
    if (settle.some((r) => r.status >= 500)) throw new Error("warm-up: a rerank answered 5xx");
    warmUp.requests += settle.length;

    console.log(
      `load: ${args.clients} clients × ${args.requests} requests × ${args.candidates} candidates; models/current -> B after ${Math.floor(args.requests / 2)}…`,
    );
    load = await runLoad(args, server, inspector, bodies, pubB.version, async () => {
      await cf.setPointer(pubB);
    });
    after = await memoryPoint(server, inspector);
    reloads = server.reloads();
  } finally {
    await inspector?.close();
    leftovers = await stop();
    stopOnSignal.server = undefined;
  }

  // ---- analysis
  const samples = load.samples;
  const byStatus = countBy(samples, (s) => (s.status === 0 ? "transport error" : String(s.status)));
  const fiveXx = samples.filter((s) => s.status >= 500).length;
  const transport = samples.filter((s) => s.status === 0);
  const non200 = samples.filter((s) => s.status !== 200 && s.status !== 0 && s.status < 500).length;
  const ok = samples.filter((s) => s.status === 200);
  const fallbacks = samples.filter((s) => s.fallback).length;
  const mismatches = samples.filter((s) => s.mismatch);
  const answered = samples.filter((s) => s.status !== 0);
  const latency = stats(answered.map((s) => s.end - s.start));
  const inside = stats(ok.map((s) => s.inside ?? Number.NaN).filter((x) => Number.isFinite(x)));
  const name = (v: string | undefined) =>
    v === pubA.version ? "A" : v === pubB.version ? "B" : `other:${v ?? "none"}`;
  const flip = load.flip;
  const beforeFlip = ok.filter((s) => !flip || s.i < flip.requestIndex);
  const afterFlip = ok.filter((s) => flip && s.i >= flip.requestIndex);
  const versions = countBy(ok, (s) => name(s.version));
  const ids = countBy(ok, (s) => s.id ?? "none");
  const unexpected = ok.filter((s) => name(s.version) !== "A" && name(s.version) !== "B").length;
  const idOf = (s: Sample) =>
    s.version === pubA.version ? pubA.id : s.version === pubB.version ? pubB.id : undefined;
  const idMismatch = ok.filter((s) => s.id !== idOf(s)).length;
  const firstB = ok.filter((s) => s.version === pubB.version).sort((a, b) => a.end - b.end)[0];
  const lastA = ok.filter((s) => s.version === pubA.version).sort((a, b) => b.end - a.end)[0];
  const aAfterFirstB = firstB
    ? ok.filter((s) => s.version === pubA.version && s.start > firstB.end).length
    : 0;
  // Per second of the load: answers that ended in it, their latency p50/max and the models.
  const perSecond = new Map<number, Sample[]>();
  for (const s of answered) {
    const second = Math.floor(s.end / 1000);
    const list = perSecond.get(second) ?? [];
    list.push(s);
    perSecond.set(second, list);
  }
  const timeline = [...perSecond]
    .sort((a, b) => a[0] - b[0])
    .map(([second, list]) => {
      const ms = list.map((s) => s.end - s.start);
      return {
        second,
        answers: list.length,
        p50: r1(quantile(ms, 0.5)),
        max: r1(Math.max(...ms)),
        models: countBy(list, (s) => name(s.version)),
      };
    });
  const slowest = [...answered]
    .sort((a, b) => b.end - b.start - (a.end - a.start))
    .slice(0, 10)
    .map((s) => ({
      request: s.i,
      startMs: Math.round(s.start),
      ms: r1(s.end - s.start),
      insideMs: s.inside,
      status: s.status,
      model: name(s.version),
    }));
  // At rest: after a full GC (queryObjects walks the heap), before and after the load: the live
  // memory. Under load: the sampled (1/s) maxima of the heap and backing stores plus the wasm
  // memory after the load (it only grows), garbage not yet collected included; the maxima need
  // not coincide, so it is an upper bound. "used" counts the heap in use, "committed" V8's reservation.
  const wasmAfter = after?.isolate ? after.isolate.wasmMemories.reduce((a, b) => a + b, 0) : undefined;
  const atRest = Math.max(before?.isolate?.estimate ?? 0, after?.isolate?.estimate ?? 0) || undefined;
  const underLoad =
    load.heapMax && wasmAfter !== undefined
      ? {
          used: load.heapMax.usedSize + load.heapMax.backingStorageSize + wasmAfter,
          committed: Math.max(
            load.heapMax.totalSize + load.heapMax.backingStorageSize + wasmAfter,
            atRest ?? 0,
          ),
        }
      : undefined;
  const aim = ISOLATE_AIM_MIB * MiB;

  const checks = {
    no5xx: fiveXx === 0,
    noTransportErrors: transport.length === 0,
    all200: non200 === 0,
    noFallbacks: fallbacks === 0,
    bodiesMatchHeaders: mismatches.length === 0 && idMismatch === 0,
    onlyModelsAandB: unexpected === 0,
    switchedToB: firstB !== undefined && !flip?.error,
    noDevServerReloads: reloads === 0,
    notTimedOut: !load.timedOut,
    noProcessesLeft: leftovers.length === 0,
  };
  const passed = Object.values(checks).every(Boolean);
  const report = {
    createdAt: new Date().toISOString(),
    args,
    machine: { ...machineInfo(), loadAverageBefore },
    worker: {
      entry: "edge/index.ts (bundled fallback: fixtures/model, float32)",
      weights: args.weights,
      vars: workerVars(args),
      persistTo: cf.persistTo,
      config: cf.configPath,
      bundleMs: Math.round(server.bundleMs),
      readyMs: Math.round(server.readyMs),
      publishMs: Math.round(publishMs),
    },
    models: Object.fromEntries(
      (
        [
          ["A", dirA, pubA],
          ["B", dirB, pubB],
        ] as [string, string, PublishedModel][]
      ).map(([k, dir, p]) => [
        k,
        {
          dir,
          id: p.id,
          version: p.version,
          prefix: p.prefix,
          servedBytes: (modelAddress(dir).manifest as ModelManifest).files[weightsFile(args.weights)]?.bytes,
          uploadedBytes: Object.values(p.files).reduce((a, f) => a + f.bytes, 0),
        },
      ]),
    ),
    warmUp,
    load: {
      requests: samples.length,
      extraRequestsWaitingForB: load.extra,
      wallSeconds: r2(load.wallMs / 1000),
      requestsPerSecond: r1(samples.length / (load.wallMs / 1000)),
      byStatus,
      fiveXx,
      transportErrors: transport.length,
      transportErrorSamples: transport.slice(0, 5).map((s) => s.error),
      fallbacks,
      mismatches: mismatches.length + idMismatch,
      latencyMs: latency,
      insideWorkerMs: inside,
      slowest,
      timeline,
    },
    models_seen: {
      versions,
      ids,
      beforeFlip: countBy(beforeFlip, (s) => name(s.version)),
      afterFlip: countBy(afterFlip, (s) => name(s.version)),
    },
    flip: flip && {
      atRequest: flip.requestIndex,
      requestedAtMs: Math.round(flip.requestedAt),
      pointerWrittenAtMs: flip.writtenAt === undefined ? undefined : Math.round(flip.writtenAt),
      kvPutMs: flip.putMs === undefined ? undefined : Math.round(flip.putMs),
      error: flip.error,
      firstBAnswer: firstB && { request: firstB.i, atMs: Math.round(firstB.end) },
      lastAAnswer: lastA && { request: lastA.i, atMs: Math.round(lastA.end) },
      switchAfterPointerWriteMs:
        firstB && flip.writtenAt !== undefined ? Math.round(firstB.end - flip.writtenAt) : undefined,
      aAnswersStartedAfterFirstB: aAfterFirstB,
    },
    memory: {
      note: "isolate = the worker's V8 isolate via the inspector: JS heap (used/committed) + ArrayBuffer backing stores + onnxruntime's wasm memory (at rest: after a full GC; under load: sampled maxima, garbage included). workerd = VmRSS/VmHWM of wrangler dev's two workerd processes: runtime (this isolate plus Miniflare's helper workers, the runtime itself, the compiled ORT wasm code) and proxy (wrangler's, on the public port, forwarding every request): whole processes, not the isolate's footprint.",
      limitMiB: ISOLATE_LIMIT_MIB,
      aimMiB: ISOLATE_AIM_MIB,
      atReady: memoryJson(ready),
      beforeLoad: memoryJson(before),
      afterLoad: memoryJson(after),
      duringLoad: {
        workerdRssMaxMiB: { runtime: mib(load.rssMax.runtime), proxy: mib(load.rssMax.proxy) },
        heapMax: load.heapMax && {
          usedMiB: mib(load.heapMax.usedSize),
          committedMiB: mib(load.heapMax.totalSize),
          backingStorageMiB: mib(load.heapMax.backingStorageSize),
        },
        heapSamples: load.heapSamples,
        series: load.series.map((x) => ({
          t: x.t,
          heapUsedMiB: mib(x.used),
          heapCommittedMiB: mib(x.committed),
          backingStorageMiB: mib(x.buffers),
          runtimeRssMiB: mib(x.rss),
          proxyRssMiB: mib(x.proxyRss),
        })),
      },
      isolateAtRestMiB: mib(atRest),
      isolateUnderLoadMaxMiB: underLoad && { used: mib(underLoad.used), committed: mib(underLoad.committed) },
      aimMet: {
        atRest: atRest === undefined ? undefined : atRest <= aim,
        underLoadUsed: underLoad === undefined ? undefined : underLoad.used <= aim,
        underLoadCommitted: underLoad === undefined ? undefined : underLoad.committed <= aim,
      },
      inspectorError,
    },
    devServer: { reloads, processesLeft: leftovers },
    checks,
    passed,
  };
  mkdirSync(dirname(resolve(args.out)), { recursive: true });
  writeFileSync(args.out, `${JSON.stringify(report, null, 1)}\n`);
  printTable(report);
  console.log(`\nwrote ${args.out}`);
  return passed ? 0 : 1;

  function printTable(r: typeof report): void {
    const l = r.load;
    const lat: Partial<NonNullable<typeof l.latencyMs>> = l.latencyMs ?? {};
    const ins: Partial<NonNullable<typeof l.insideWorkerMs>> = l.insideWorkerMs ?? {};
    const f = r.flip;
    const m = r.memory;
    const iso = (p: ReturnType<typeof memoryJson>) =>
      p?.isolate
        ? `heap ${p.isolate.heapUsedMiB}/${p.isolate.heapCommittedMiB} + buffers ${p.isolate.backingStorageMiB} + wasm ${p.isolate.wasmMemoryMiB.join("+")} = ${p.isolate.estimateMiB} MiB`
        : `n/a (${p?.isolateError ?? "not measured"})`;
    const verdict = (met: boolean | undefined) =>
      met === undefined ? "n/a" : met ? "aim met" : "aim NOT met";
    const rss = (p: ReturnType<typeof memoryJson>, role: "runtime" | "proxy") =>
      `${p?.workerd[role]?.rssMiB ?? "n/a"}`;
    const rows: [string, string][] = [
      [
        "run",
        `${r.createdAt.slice(0, 10)}  ${args.clients} clients × ${l.requests} requests${l.extraRequestsWaitingForB ? ` (${l.extraRequestsWaitingForB} past --requests waiting for B)` : ""} × ${args.candidates} candidates, ${args.weights} from local R2; ${r.machine.cpus} CPUs, load avg ${r.machine.loadAverageBefore.map((x) => x.toFixed(1)).join(" ")} before, ${r.machine.loadAverage.map((x) => x.toFixed(1)).join(" ")} after`,
      ],
      [
        "status",
        Object.entries(l.byStatus)
          .map(([k, v]) => `${k}: ${v}`)
          .join(", ") || "none",
      ],
      [
        "5xx / transport",
        `${l.fiveXx} / ${l.transportErrors}   fallbacks ${l.fallbacks}   body mismatches ${l.mismatches}`,
      ],
      [
        "latency ms",
        `p50 ${lat.p50}  p90 ${lat.p90}  p99 ${lat.p99}  max ${lat.max}  (inside worker p50 ${ins.p50} p99 ${ins.p99})`,
      ],
      ["throughput", `${l.requestsPerSecond} req/s over ${l.wallSeconds} s`],
      [
        "models",
        `before flip ${JSON.stringify(r.models_seen.beforeFlip)}  after ${JSON.stringify(r.models_seen.afterFlip)}  (A ${pubA.id}, B ${pubB.id})`,
      ],
      [
        "flip",
        f
          ? `at request ${f.atRequest} (+${(f.requestedAtMs / 1000).toFixed(1)} s); KV put ${f.kvPutMs} ms; first B answer +${f.switchAfterPointerWriteMs} ms after the write (request ${f.firstBAnswer?.request}); A answers after it: ${f.aAnswersStartedAfterFirstB}${f.error ? `; error ${f.error}` : ""}`
          : "not reached",
      ],
      ["isolate ready", iso(m.atReady)],
      ["isolate before", iso(m.beforeLoad)],
      ["isolate after", iso(m.afterLoad)],
      [
        "isolate vs limit",
        `at rest ${m.isolateAtRestMiB} MiB (${verdict(m.aimMet.atRest)}); under load max ${m.isolateUnderLoadMaxMiB?.used} used (${verdict(m.aimMet.underLoadUsed)}) / ${m.isolateUnderLoadMaxMiB?.committed} committed (${verdict(m.aimMet.underLoadCommitted)}) MiB, garbage included; of ${m.limitMiB} MiB, aim <= ${m.aimMiB} MiB`,
      ],
      [
        "workerd RSS MiB",
        `runtime (runs the isolate): ready ${rss(m.atReady, "runtime")}  before ${rss(m.beforeLoad, "runtime")}  after ${rss(m.afterLoad, "runtime")}  max under load ${m.duringLoad.workerdRssMaxMiB.runtime}  VmHWM ${m.afterLoad?.workerd.runtime?.hwmMiB ?? "n/a"}`,
      ],
      [
        "",
        `proxy (wrangler's, in front): ready ${rss(m.atReady, "proxy")}  before ${rss(m.beforeLoad, "proxy")}  after ${rss(m.afterLoad, "proxy")}  max under load ${m.duringLoad.workerdRssMaxMiB.proxy}  VmHWM ${m.afterLoad?.workerd.proxy?.hwmMiB ?? "n/a"}`,
      ],
      [
        "checks",
        Object.entries(r.checks)
          .map(([k, v]) => `${v ? "ok" : "FAIL"} ${k}`)
          .join(", "),
      ],
    ];
    console.log("");
    for (const [k, v] of rows) console.log(`${k.padEnd(17)} ${v}`);
  }
}

await runBench("bench:load-edge", main);
