/**
 * Wrangler's LOCAL Cloudflare state as the worker's model store: an R2 bucket and a KV namespace
 * kept on disk (`--persist-to <dir>`), holding the layout the worker reads (edge/model/store.ts,
 * docs/worker.md "Models from R2 and KV"):
 *
 *   R2  <bucket>/models/<sha256 of manifest.json>/manifest.json, model.onnx, model.int8.onnx, …
 *   KV  models/current -> "models/<sha256>/"        (models/challenger likewise)
 *
 * and `wrangler dev` serving from it (bindings MTRANK_MODELS and MTRANK_MODEL_POINTERS). Node-side
 * tooling for benchmarks and local runs; the worker never imports this file.
 *
 *   const cf = localCloudflare({ persistTo: ".mtrank/my-state", vars: { MTRANK_MODEL_WEIGHTS: "int8" } });
 *   const a = await cf.publishModelDir("out/demo/model");   // uploads, reads back, verifies
 *   await cf.setPointer(a);                                  // KV models/current = a.prefix
 *   const server = await cf.startDev({ port: 8787 });
 *   …                                                        // cf.setPointer(b) flips it live
 *   await server.stop();                                     // the whole process group
 *   await cf.close();                                        // the registry's workerd
 *
 * Writes go through the nightly pipeline's own local registry (trainer/pipeline/registry/: a
 * Miniflare over `<persist-to>/v3`, the way `wrangler r2 object put --local` / `wrangler kv key
 * put --local` open it; ~15 ms a call once its workerd is up, retried on SQLite contention with a
 * running wrangler dev), so this state is the one `npm run pipeline` publishes to in local mode,
 * with the same bucket and namespace id by default. A running `wrangler dev` sees a pointer flip on
 * its next KV read (MTRANK_MODEL_REFRESH_S).
 *
 * The dev server serves a snapshot of the worker: startDev bundles the entry once (`wrangler
 * deploy --dry-run --outdir`) and serves that bundle with `no_bundle`, so edits elsewhere in the
 * tree during a long run do not reload the worker (a reload drops in-flight requests with 503s and
 * restarts the isolate on its bundled model). What this generates (config, bundle, and the state
 * by default) lives under the ignored .mtrank/.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import type { ModelManifest } from "../shared/manifest.ts";
import type { PointerName, PublishedModel } from "../trainer/pipeline/contracts.ts";
import { modelPrefix, sha256Hex } from "../trainer/pipeline/registry/keys.ts";
import { DEFAULT_BUCKET, DEFAULT_NAMESPACE_ID, LocalRegistry } from "../trainer/pipeline/registry/local.ts";
import { flipPointer, publishModel } from "../trainer/pipeline/registry/publish.ts";

export type { PointerName, PublishedModel };
export { DEFAULT_BUCKET, DEFAULT_NAMESPACE_ID };

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** The pointer keys the worker reads (edge/model/catalog.ts). */
export const CURRENT_POINTER: PointerName = "models/current";
export const CHALLENGER_POINTER: PointerName = "models/challenger";

/**
 * For every wrangler this module starts: no telemetry, no banner (its update check asks npm),
 * no fetch of the `Request.cf` placeholder from workers.cloudflare.com, no interactive prompts.
 */
const WRANGLER_ENV = {
  WRANGLER_SEND_METRICS: "false",
  WRANGLER_HIDE_BANNER: "true",
  CLOUDFLARE_CF_FETCH_ENABLED: "false",
  CI: "true",
};
/** A wrangler CLI call is given this long before its process group is killed. */
const CLI_TIMEOUT_MS = 120_000;

export interface LocalCloudflareOptions {
  /** Folder for the generated wrangler config and bundle (default .mtrank/local-cloudflare). */
  dir?: string;
  /** wrangler's local state, `--persist-to` (default <dir>/state). */
  persistTo?: string;
  /** The worker entry to bundle (default edge/index.ts, wrangler.toml's `main`). */
  entry?: string;
  /** R2 bucket name behind MTRANK_MODELS (default DEFAULT_BUCKET, as the pipeline's). */
  bucket?: string;
  /** KV namespace id behind MTRANK_MODEL_POINTERS (default DEFAULT_NAMESPACE_ID, as the pipeline's). */
  namespaceId?: string;
  /** [vars] of the worker, e.g. { MTRANK_MODEL_WEIGHTS: "int8", MTRANK_MODEL_REFRESH_S: "1" }. */
  vars?: Record<string, string>;
  /** Told of the registry's retried tries (LocalRegistryOptions.log). */
  log?: (line: string) => void;
}

export interface DevOptions {
  /** Default 8787. */
  port?: number;
  /** DevTools inspector port (CDP through wrangler's proxy at ws://127.0.0.1:<port>/ws); default 9229. */
  inspectorPort?: number;
  /** Limit on bundling + start-up until /healthz answers (default 120 s). */
  timeoutMs?: number;
  /** Bytes of wrangler's output kept for `log()` (default 256 KiB). */
  logBytes?: number;
}

export interface LocalDevServer {
  base: string;
  inspectorUrl: string;
  /** The process group (the detached npx's pid): stop() signals all of it. */
  pgid: number;
  /** From spawning wrangler dev to the first /healthz answer, ms (bundling before it not included). */
  readyMs: number;
  bundleMs: number;
  /**
   * The group's workerd processes. wrangler dev runs two: "runtime" runs the worker's isolate
   * (with Miniflare's helpers: the R2/KV simulators…; it has the inspector), "proxy" is wrangler's
   * proxy on the public port that forwards each request to it. Empty once stopped.
   */
  workerdProcesses(): { pid: number; role: "runtime" | "proxy" }[];
  /** The tail of wrangler's stdout + stderr. */
  log(): string;
  /** "Reloading local server" lines seen: each restarts the isolate. */
  reloads(): number;
  /** SIGTERM to the group, SIGKILL after 5 s; resolves with the pids still alive (should be none). */
  stop(): Promise<number[]>;
}

export interface LocalCloudflare {
  readonly dir: string;
  readonly persistTo: string;
  readonly bucket: string;
  readonly namespaceId: string;
  /** The generated wrangler config (bindings, vars, the bundle as `main`). */
  readonly configPath: string;
  /** The pipeline's registry over this state (its workerd starts on first use; close() stops it). */
  readonly registry: LocalRegistry;
  /**
   * Uploads a model directory under models/<sha256 of manifest.json>/ (every file its manifest
   * lists, manifest.json last), reads every object back and verifies it (trainer/pipeline/registry/publish.ts).
   */
  publishModelDir(modelDir: string): Promise<PublishedModel>;
  /**
   * KV `key` (default models/current) = the model's prefix: a PublishedModel (its manifest.json
   * checked to be still there) or a bare prefix (verified whole first). Returns the prefix before.
   */
  setPointer(target: PublishedModel | string, key?: PointerName): Promise<string | undefined>;
  /** The prefix KV `key` (default models/current) names, or undefined. */
  getPointer(key?: PointerName): Promise<string | undefined>;
  /** Bundles the entry, then starts `wrangler dev` on the local state, in its own process group. */
  startDev(options?: DevOptions): Promise<LocalDevServer>;
  /** Stops the registry's workerd (a later call starts it again). */
  close(): Promise<void>;
}

/** The content address of a model directory: the sha256 of its manifest.json, and its prefix. */
export function modelAddress(modelDir: string): { sha256: string; prefix: string; manifest: ModelManifest } {
  const bytes = readFileSync(join(modelDir, "manifest.json"));
  const sha256 = sha256Hex(bytes);
  return {
    sha256,
    prefix: modelPrefix(sha256),
    manifest: JSON.parse(bytes.toString("utf8")) as ModelManifest,
  };
}

export function localCloudflare(options: LocalCloudflareOptions = {}): LocalCloudflare {
  const dir = resolve(ROOT, options.dir ?? join(".mtrank", "local-cloudflare"));
  const persistTo = resolve(ROOT, options.persistTo ?? join(dir, "state"));
  const entry = resolve(ROOT, options.entry ?? join("edge", "index.ts"));
  const bucket = options.bucket ?? DEFAULT_BUCKET;
  const namespaceId = options.namespaceId ?? DEFAULT_NAMESPACE_ID;
  const configPath = join(dir, "wrangler.toml");
  const bundleDir = join(dir, "bundle");
  mkdirSync(dir, { recursive: true });
  writeFileSync(configPath, serveConfig(bucket, namespaceId, options.vars ?? {}));
  const registry = new LocalRegistry({
    persistTo,
    bucket,
    namespaceId,
    ...(options.log ? { log: options.log } : {}),
  });

  return {
    dir,
    persistTo,
    bucket,
    namespaceId,
    configPath,
    registry,
    publishModelDir: (modelDir) => publishModel(registry, modelDir),
    setPointer: (target, key = CURRENT_POINTER) => flipPointer(registry, key, target),
    getPointer: (key = CURRENT_POINTER) => registry.getPointer(key),
    close: () => registry.close(),

    async startDev(dev = {}) {
      const port = dev.port ?? 8787;
      const inspectorPort = dev.inspectorPort ?? 9229;
      const timeoutMs = dev.timeoutMs ?? 120_000;
      const bundleStarted = performance.now();
      rmSync(bundleDir, { recursive: true, force: true });
      // The repository's wrangler.toml holds the module rules (.onnx as Data, .wasm compiled).
      await runWrangler(
        ["deploy", entry, "--dry-run", "--outdir", bundleDir, "--config", join(ROOT, "wrangler.toml")],
        timeoutMs,
      );
      const bundleMs = performance.now() - bundleStarted;
      const started = performance.now();
      const group = spawnGroup("npx", [
        "wrangler",
        "dev",
        "--config",
        configPath,
        "--ip",
        "127.0.0.1",
        "--port",
        String(port),
        "--inspector-port",
        String(inspectorPort),
        "--persist-to",
        persistTo,
      ]);
      const logBytes = dev.logBytes ?? 256 * 1024;
      let log = "";
      let reloads = 0;
      let carry = "";
      const keep = (chunk: Buffer) => {
        const text = chunk.toString();
        const scan = carry + text;
        reloads += scan.split("Reloading local server").length - 1;
        carry = text.slice(-40);
        log = (log + text).slice(-logBytes);
      };
      group.child.stdout?.on("data", keep);
      group.child.stderr?.on("data", keep);
      const base = `http://127.0.0.1:${port}`;
      const server: LocalDevServer = {
        base,
        inspectorUrl: `ws://127.0.0.1:${inspectorPort}/ws`,
        pgid: group.pgid,
        readyMs: 0,
        bundleMs,
        workerdProcesses: () =>
          groupProcesses(group.pgid)
            .filter((p) => p.comm === "workerd" && p.state !== "Z")
            .map((p) => ({
              pid: p.pid,
              // The proxy listens on the public port; the runtime on a port of its own (entry=…:0).
              role: commandLine(p.pid).includes(`--socket-addr=entry=127.0.0.1:${port} `)
                ? "proxy"
                : "runtime",
            })),
        log: () => log,
        reloads: () => reloads,
        stop: () => group.stop(),
      };
      try {
        await waitForHealth(base, group.child, () => log, timeoutMs);
      } catch (error) {
        await group.stop();
        throw error;
      }
      server.readyMs = performance.now() - started;
      return server;
    },
  };

  function serveConfig(bucketName: string, namespaceId: string, vars: Record<string, string>): string {
    const date = /^compatibility_date\s*=\s*"([^"]+)"/m.exec(
      readFileSync(join(ROOT, "wrangler.toml"), "utf8"),
    )?.[1];
    if (!date) throw new Error("wrangler.toml has no compatibility_date");
    const main = relative(dir, join(bundleDir, "index.js")).split(sep).join("/");
    const q = (s: string) => JSON.stringify(s);
    return [
      "# Generated by scripts/local-cloudflare.ts: the worker bundle served on wrangler's local R2 + KV. Do not edit.",
      'name = "mtrank"',
      `main = ${q(main)}`,
      `compatibility_date = ${q(date)}`,
      "no_bundle = true",
      "",
      "[[rules]]",
      'type = "Data"',
      'globs = ["**/*.onnx", "**/*.bin"]',
      "fallthrough = false",
      "",
      "[[rules]]",
      'type = "CompiledWasm"',
      'globs = ["**/*.wasm"]',
      "fallthrough = false",
      "",
      "[[r2_buckets]]",
      'binding = "MTRANK_MODELS"',
      `bucket_name = ${q(bucketName)}`,
      "",
      "[[kv_namespaces]]",
      'binding = "MTRANK_MODEL_POINTERS"',
      `id = ${q(namespaceId)}`,
      "",
      "[vars]",
      ...Object.entries(vars).map(([k, v]) => `${k} = ${q(v)}`),
      "",
    ].join("\n");
  }
}

// ---- processes ---------------------------------------------------------------------------------

interface Group {
  child: ChildProcess;
  pgid: number;
  stop(): Promise<number[]>;
}

/** Process groups started here and not yet stopped: killed on exit whatever happens. */
const liveGroups = new Set<number>();
let exitHookInstalled = false;

/** SIGKILLs every process group this module started and has not stopped yet (synchronous). */
export function killLocalProcessGroups(): void {
  for (const pgid of liveGroups) {
    try {
      process.kill(-pgid, "SIGKILL");
    } catch {
      // Already gone.
    }
  }
  liveGroups.clear();
}

/** Spawns `command` as the leader of a new process group (killing npx alone leaves wrangler and workerd). */
function spawnGroup(command: string, args: string[]): Group {
  const child = spawn(command, args, {
    cwd: ROOT,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...WRANGLER_ENV },
  });
  const pgid = child.pid;
  if (pgid === undefined) throw new Error(`could not start ${command} ${args.join(" ")}`);
  liveGroups.add(pgid);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once("exit", killLocalProcessGroups);
  }
  const exited = new Promise<void>((r) => {
    if (child.exitCode !== null || child.signalCode !== null) r();
    else child.once("exit", () => r());
  });
  return {
    child,
    pgid,
    async stop() {
      const signal = (s: NodeJS.Signals) => {
        try {
          process.kill(-pgid, s);
        } catch {
          // The group is empty.
        }
      };
      signal("SIGTERM");
      const deadline = Date.now() + 5000;
      while (Date.now() < deadline && groupProcesses(pgid).some((p) => p.state !== "Z"))
        await new Promise((r) => setTimeout(r, 100));
      if (groupProcesses(pgid).some((p) => p.state !== "Z")) signal("SIGKILL");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 2000))]);
      const killDeadline = Date.now() + 2000;
      while (Date.now() < killDeadline && groupProcesses(pgid).some((p) => p.state !== "Z"))
        await new Promise((r) => setTimeout(r, 100));
      liveGroups.delete(pgid);
      return groupProcesses(pgid)
        .filter((p) => p.state !== "Z")
        .map((p) => p.pid);
    },
  };
}

interface RawResult {
  code: number | null;
  output: { stdout: string; stderr: string };
}

/** `npx wrangler …` in its own process group, killed after `timeoutMs`. */
async function runWranglerRaw(args: string[], timeoutMs = CLI_TIMEOUT_MS): Promise<RawResult> {
  const group = spawnGroup("npx", ["wrangler", ...args]);
  const output = { stdout: "", stderr: "" };
  group.child.stdout?.on("data", (c: Buffer) => {
    output.stdout = (output.stdout + c.toString()).slice(-64 * 1024);
  });
  group.child.stderr?.on("data", (c: Buffer) => {
    output.stderr = (output.stderr + c.toString()).slice(-64 * 1024);
  });
  let timedOut = false;
  const code = await new Promise<number | null>((resolveCode, reject) => {
    const timer = setTimeout(() => {
      timedOut = true;
      void group.stop().then(() => resolveCode(null));
    }, timeoutMs);
    group.child.once("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    group.child.once("exit", (c) => {
      clearTimeout(timer);
      resolveCode(c);
    });
  });
  // npx exited: reap what it may have left in its group (a CLI call's workerd).
  if (!timedOut) await group.stop();
  if (timedOut) throw new Error(`wrangler ${args.slice(0, 3).join(" ")} took over ${timeoutMs / 1000} s`);
  return { code, output };
}

async function runWrangler(args: string[], timeoutMs = CLI_TIMEOUT_MS): Promise<string> {
  const { code, output } = await runWranglerRaw(args, timeoutMs);
  if (code !== 0)
    throw new Error(
      `wrangler ${args.slice(0, 4).join(" ")} exited ${code}: ${tail(output.stderr + output.stdout)}`,
    );
  return output.stdout;
}

export interface GroupProcess {
  pid: number;
  comm: string;
  /** /proc state letter: R, S, D, Z (zombie)… */
  state: string;
}

/** The processes whose process group is `pgid` (Linux /proc). */
export function groupProcesses(pgid: number): GroupProcess[] {
  const found: GroupProcess[] = [];
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return found;
  }
  for (const name of entries) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, "utf8");
    } catch {
      continue; // Exited meanwhile.
    }
    // "pid (comm) state ppid pgrp …": comm may hold spaces and parentheses.
    const close = stat.lastIndexOf(")");
    const fields = stat.slice(close + 2).split(" ");
    if (Number(fields[2]) !== pgid) continue;
    found.push({
      pid: Number(name),
      comm: stat.slice(stat.indexOf("(") + 1, close),
      state: fields[0] ?? "?",
    });
  }
  return found;
}

/** The command line of a process, arguments joined by spaces (with a trailing one); "" when it is gone. */
function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ");
  } catch {
    return "";
  }
}

/** VmRSS and VmHWM (peak RSS) of a process, in bytes, or undefined when it is gone. */
export function processMemory(pid: number): { rss: number; hwm: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (field: string) =>
      Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? Number.NaN);
    return { rss: kb("VmRSS") * 1024, hwm: kb("VmHWM") * 1024 };
  } catch {
    return undefined;
  }
}

async function waitForHealth(base: string, child: ChildProcess, log: () => string, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`wrangler dev exited (${child.exitCode}): ${tail(log())}`);
    try {
      const res = await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(5000) });
      await res.arrayBuffer();
      if (res.ok) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`wrangler dev did not answer ${base}/healthz within ${timeoutMs / 1000} s: ${tail(log())}`);
}

function tail(log: string): string {
  return log.trim().split("\n").slice(-6).join(" | ");
}

/** A TCP port free on 127.0.0.1 now (the OS picks it), for a wrangler dev or a stand-in server. */
export async function freePort(): Promise<number> {
  return await new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

/** What a signal must stop before a bench exits: set while its wrangler dev or registry runs. */
export const stopOnSignal: {
  /** Stops wrangler dev (SIGTERM to its group, then SIGKILL). */
  server?: () => Promise<unknown>;
  /** Closes the registry (the pipeline's Miniflare over the local state may hold a workerd). */
  registry?: () => Promise<unknown>;
} = {};

/**
 * Runs a benchmark's `main` and exits with its code (1 and one line on an error); SIGINT,
 * SIGTERM or SIGHUP first stop what `stopOnSignal` holds and every process group this module
 * started, so no wrangler or workerd outlives the bench.
 */
export async function runBench(name: string, main: () => Promise<number>): Promise<never> {
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const)
    process.once(signal, () => {
      console.error(`\n${signal}: stopping wrangler…`);
      const stops = [stopOnSignal.server, stopOnSignal.registry].map((stop) => stop?.());
      void Promise.allSettled(stops).finally(() => {
        killLocalProcessGroups();
        process.exit(130);
      });
    });
  const code = await main().catch((error: unknown) => {
    console.error(`${name}: ${(error as Error).message}`);
    return 1;
  });
  process.exit(code);
}
