/**
 * `wrangler dev` for npm run bench:edge: start it on a model directory in its own process group
 * (killing npx alone leaves wrangler and workerd running, docs/notes/ort-web-in-workerd.md),
 * wait for /healthz, stop the whole group; and a timed rerank against it.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { type DevEntryOptions, devServerArgs } from "../scripts/dev-config.ts";

export interface DevServer {
  base: string;
  /** From spawning wrangler to the first /healthz answer (bundling included), ms. */
  readyMs: number;
  stop(): Promise<void>;
}

export async function startDevServer(
  modelDir: string,
  port: number,
  options: DevEntryOptions,
  timeoutMs = 120_000,
): Promise<DevServer> {
  const started = performance.now();
  const child = spawn("npx", ["wrangler", ...devServerArgs(modelDir, port, options)], {
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "true" },
  });
  let log = "";
  const keep = (chunk: Buffer) => {
    log += chunk.toString();
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const base = `http://127.0.0.1:${port}`;
  const stop = () => stopGroup(child);
  try {
    await waitForHealth(base, child, () => log, timeoutMs);
    return { base, readyMs: performance.now() - started, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

async function waitForHealth(base: string, child: ChildProcess, log: () => string, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`wrangler dev exited (${child.exitCode}): ${tail(log())}`);
    try {
      if ((await fetch(`${base}/healthz`)).ok) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`wrangler dev did not answer ${base}/healthz within ${timeoutMs / 1000} s: ${tail(log())}`);
}

function tail(log: string): string {
  return log.trim().split("\n").slice(-5).join(" | ");
}

async function stopGroup(child: ChildProcess): Promise<void> {
  if (!child.pid || child.exitCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  try {
    process.kill(-child.pid, "SIGTERM");
  } catch {
    return; // Already gone.
  }
  await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
}

/**
 * POST /v1/rerank: the client time and the worker's Server-Timing phases (ms by name). Anything
 * but a 200 that the model scored (no fallback) throws: a benchmark must not time fallbacks.
 */
export async function timedPost(
  base: string,
  body: string,
): Promise<{ ms: number; phases: Record<string, number> }> {
  const start = performance.now();
  const res = await fetch(`${base}/v1/rerank`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body,
  });
  const json = (await res.json()) as { fallback?: boolean };
  const ms = performance.now() - start;
  if (res.status !== 200 || json.fallback !== false)
    throw new Error(
      `bench: rerank answered ${res.status} fallback=${json.fallback}: ${JSON.stringify(json).slice(0, 300)}`,
    );
  const phases: Record<string, number> = {};
  for (const part of (res.headers.get("server-timing") ?? "").split(",")) {
    const m = /^\s*([\w-]+);dur=([\d.]+)/.exec(part);
    if (m) phases[m[1]!] = Number(m[2]);
  }
  return { ms, phases };
}
