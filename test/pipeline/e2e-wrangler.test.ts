/**
 * The pipeline's faults end to end against REAL wrangler local state and a REAL `wrangler dev`
 * (issue 25, "Faults"). One wrangler dev (scripts/local-cloudflare.ts: a bundle of the worker,
 * edge/index.ts, with MTRANK_MODELS / MTRANK_MODEL_POINTERS bound to a temporary `--persist-to`
 * state and MTRANK_MODEL_REFRESH_S=1) serves what runPipeline publishes there through the
 * pipeline's local registry, and every run's smoke test polls that server. In order, sharing the
 * server, the data and the champion each case leaves:
 *
 *   1. v1 published (first run): the smoke test passes; /v1/rerank answers with v1.
 *   2. a worse v2 (a floor it cannot meet): refused; v1 still serves.
 *   3. a better v2, with 4 clients × 200 reranks running through the publish and flip: served
 *      without a redeploy; no 5xx, no fallback, only v1 and v2 answered.
 *   4. two runs at once, with the smoke test pointed at a port nothing listens on: one refuses
 *      (the lock), the other publishes, fails its smoke test and rolls back; v2 serves.
 *   5. `mtrank pipeline rollback` (the CLI): v1 serves again.
 *   6. model.onnx changed in R2 after it was hashed, verified and uploaded (between publish and
 *      the flip): the worker refuses the files and keeps serving v1, the smoke test fails, the
 *      pointer goes back; a flip to that prefix is refused by its verification.
 *   7. a run killed (its whole process group, SIGKILL) between upload and pointer flip: v1 still
 *      serves, the uploaded prefix is named by no pointer, the lock is left behind; the next run
 *      breaks the expired lock, publishes and serves.
 *
 * Then, without the worker: the smoke test's failure detail keeps what the worker last served
 * when its final poll is cut short by the deadline (it used to read "timed out" instead).
 *
 * Every wait is bounded; wrangler's process group is stopped in afterAll, also on failure. About
 * 75 s on 2 cores (seven small trainings, one in a child process, and wrangler's start).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  freePort,
  groupProcesses,
  killLocalProcessGroups,
  type LocalCloudflare,
  type LocalDevServer,
  localCloudflare,
} from "../../scripts/local-cloudflare.ts";
import type { ModelManifest } from "../../shared/manifest.ts";
import { type PipelineConfig, parseConfig } from "../../trainer/pipeline/config.ts";
import type { PointerName, Registry } from "../../trainer/pipeline/contracts.ts";
import { fixedRequest } from "../../trainer/pipeline/fixed-request.ts";
import type { RunRecord } from "../../trainer/pipeline/record.ts";
import { listRecords } from "../../trainer/pipeline/registry/history.ts";
import { LOCK_KEY } from "../../trainer/pipeline/registry/lock.ts";
import { flipPointer, verifyPrefix } from "../../trainer/pipeline/registry/publish.ts";
import { type RunResult, runPipeline } from "../../trainer/pipeline/run.ts";
import { smokeTest } from "../../trainer/pipeline/smoke.ts";
import { simulate, toCsv } from "../../trainer/simulate/simulator.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
/** The worker re-reads its pointers this often (seconds). */
const REFRESH_S = 1;

let dir: string;
let cf: LocalCloudflare | undefined;
let server: LocalDevServer | undefined;
/** The pipeline's local registry over the state wrangler dev serves (cf.registry). */
let registry: Registry;
/** A POST /v1/rerank body over the pipeline models' features (all share the simulator's spec). */
let body: string;
const lines: string[] = [];
const started = performance.now();
/** Each line with the seconds since the file started, so a stalled step shows where it stalled. */
const log = (line: string) => {
  lines.push(`${((performance.now() - started) / 1000).toFixed(1).padStart(6)} s  ${line}`);
};

/** A model as the worker reports it. */
interface Model {
  id: string;
  version: string;
  prefix: string;
}
/** The models published along the way. */
const models: Record<"v1" | "v2", Model | undefined> = { v1: undefined, v2: undefined };
const need = (name: keyof typeof models): Model => {
  const m = models[name];
  if (!m) throw new Error(`${name} was not published by an earlier case`);
  return m;
};

/** The raw pipeline.json (also written to disk for the CLI); `patch` replaces top-level fields. */
function rawConfig(day: string, patch: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    data: { source: day, spec: "spec.json" },
    training: { arch: "shared-bottom", epochs: 2, options: { bottom: [16], tower: [8], cross: 0 } },
    evaluation: { holdout: "holdout.csv" },
    // The days are small random halves of one log: id-like features move by chance alone.
    drift: { warn: { psi: 2, js: 1, unseen: 1, rate: 1 }, stop: { psi: 5, js: 1, unseen: 1, rate: 1 } },
    gate: {
      floors: [{ task: "click", metric: "auc", min: 0.5 }],
      changes: [{ task: "click", metric: "auc", direction: "higher", maxDrop: 0.05 }],
      int8: { maxAucDrop: 0.01 },
      size: { modelBytes: 1_000_000 },
    },
    registry: { local: { persistTo: "state" } },
    smoke: { url: server?.base ?? "http://127.0.0.1:1", timeoutS: 40, pollS: 0.2 },
    ...patch,
  };
}

function config(day: string, patch: Record<string, unknown> = {}): PipelineConfig {
  return parseConfig(rawConfig(day, patch), join(dir, "pipeline.json"));
}

/** The run's reason and the last log lines, for an assertion's message. */
function why(r: RunResult): string {
  return `${r.record.outcome}: ${r.record.reason}\n${lines.slice(-14).join("\n")}`;
}

function publishedModel(r: RunResult): Model {
  const p = r.record.published;
  if (!p) throw new Error(`nothing published: ${why(r)}`);
  return { id: p.id, version: p.version, prefix: p.prefix };
}

const pointer = () => registry.getPointer("models/current");

// ---- the worker ---------------------------------------------------------------------------------

interface Answer {
  /** 0: no response (transport error). */
  status: number;
  version?: string;
  id?: string;
  fallback: boolean;
  error?: string;
  /** ms (performance.now) when the answer was read. */
  at: number;
}

async function rerank(): Promise<Answer> {
  if (!server) throw new Error("wrangler dev is not running");
  try {
    const res = await fetch(`${server.base}/v1/rerank`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
      signal: AbortSignal.timeout(15_000),
    });
    const text = await res.text();
    let id: string | undefined;
    if (res.status === 200) id = (JSON.parse(text) as { model?: { id?: string } }).model?.id;
    const version = res.headers.get("x-model-version");
    return {
      status: res.status,
      ...(version ? { version } : {}),
      ...(id ? { id } : {}),
      fallback: res.headers.get("x-mtrank-fallback") === "1",
      at: performance.now(),
    };
  } catch (error) {
    return { status: 0, fallback: false, error: String(error), at: performance.now() };
  }
}

const show = (a: Answer) => `${a.status} ${a.version ?? a.error ?? "?"}${a.fallback ? " (fallback)" : ""}`;

/** Waits (bounded) until /v1/rerank answers with `model`, then checks the next answers stay on it. */
async function expectServes(model: Model, withinMs = 20_000): Promise<void> {
  const deadline = performance.now() + withinMs;
  let last: Answer | undefined;
  while (performance.now() < deadline) {
    last = await rerank();
    if (last.status === 200 && last.version === model.version) break;
    await sleep(100);
  }
  expect(last && show(last), `${model.id} ${model.version} within ${withinMs} ms`).toBe(
    `200 ${model.version}`,
  );
  await expectStillServes(model, 0);
}

/**
 * `model` answers every rerank for `forMs` (the worker re-reads its pointer on requests, every
 * REFRESH_S: this spans a few reads), without fallback.
 */
async function expectStillServes(model: Model, forMs = 2.5 * REFRESH_S * 1000): Promise<void> {
  const until = performance.now() + forMs;
  const seen: Answer[] = [];
  do {
    seen.push(await rerank());
    await sleep(150);
  } while (performance.now() < until || seen.length < 3);
  expect(seen.map(show), `only ${model.id} ${model.version}`).toEqual(seen.map(() => `200 ${model.version}`));
  expect(seen.every((a) => a.id === model.id)).toBe(true);
}

// ---- set-up -------------------------------------------------------------------------------------

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "mtrank-pipeline-wrangler-"));
  const { rows, spec } = simulate({ seed: 7, users: 300, items: 200, requests: 900 });
  await mkdir(join(dir, "day1"));
  await mkdir(join(dir, "day2"));
  await writeFile(join(dir, "day1", "part-0.csv"), toCsv(rows.slice(0, 3000)));
  await writeFile(join(dir, "day2", "part-0.csv"), toCsv(rows.slice(3000, 6000)));
  // The same days' rows in another order, for runs after a day was published: a day whose
  // files an earlier published run had (by sha256) is refused as delivered again.
  await mkdir(join(dir, "day1r"));
  await mkdir(join(dir, "day2r"));
  await writeFile(join(dir, "day1r", "part-0.csv"), toCsv(rows.slice(0, 3000).reverse()));
  await writeFile(join(dir, "day2r", "part-0.csv"), toCsv(rows.slice(3000, 6000).reverse()));
  await writeFile(join(dir, "holdout.csv"), toCsv(rows.slice(6000)));
  await writeFile(join(dir, "spec.json"), JSON.stringify(spec));
  cf = localCloudflare({
    dir: join(dir, "cf"),
    persistTo: join(dir, "state"),
    vars: { MTRANK_MODEL_REFRESH_S: String(REFRESH_S) },
    // The registry's retried calls join the run lines a failed case prints.
    log,
  });
  registry = cf.registry;
  const port = await freePort();
  let inspectorPort = await freePort();
  while (inspectorPort === port) inspectorPort = await freePort();
  server = await cf.startDev({ port, inspectorPort, timeoutMs: 120_000 });
  await writeFile(join(dir, "pipeline.json"), JSON.stringify(rawConfig("day1"), null, 1));
}, 180_000);

afterAll(async () => {
  const left = await server?.stop();
  await cf?.close();
  // Whatever this file started and has not stopped (a failed start's bundler, the dev server).
  killLocalProcessGroups();
  if (dir) await rm(dir, { recursive: true, force: true });
  expect(left ?? []).toEqual([]);
}, 60_000);

// ---- the cases ----------------------------------------------------------------------------------

beforeEach(({ onTestFailed }) => {
  // A case that fails, or runs out of time inside a pipeline step, prints what its runs logged:
  // a timeout's own message names no step.
  const from = lines.length;
  onTestFailed(() => {
    console.log(`pipeline lines of the failed case:\n${lines.slice(from).join("\n") || "(none)"}`);
    // A transport error (ECONNREFUSED) says the dev server went away: its own last words say why.
    const workerd =
      server
        ?.workerdProcesses()
        .map((p) => `${p.role} ${p.pid}`)
        .join(", ") || "none";
    console.log(
      `wrangler dev (workerd: ${workerd}), the tail of its log:\n${server?.log().slice(-6000) ?? "(not started)"}`,
    );
  });
});

describe("pipeline faults against wrangler dev on local R2/KV", { timeout: 120_000 }, () => {
  it("v1 is published, the smoke test passes against wrangler dev, and /v1/rerank answers with v1", async () => {
    expect(await pointer()).toBeUndefined();
    const r = await runPipeline(config("day1"), { registry, log });
    expect(r.exitCode, why(r)).toBe(0);
    const v1 = publishedModel(r);
    models.v1 = v1;
    expect(r.record.smoke).toMatchObject({ passed: true, rerank: { status: 200, modelVersion: v1.version } });
    expect(await pointer()).toBe(v1.prefix);
    const manifest = JSON.parse(
      new TextDecoder().decode((await registry.get(`${v1.prefix}manifest.json`))!.bytes),
    ) as ModelManifest;
    body = JSON.stringify(fixedRequest(manifest, "e2e-wrangler"));
    await expectServes(v1);
  });

  it("a worse v2 (a floor it cannot meet) is refused with a readable reason; v1 still serves", async () => {
    const v1 = need("v1");
    const base = config("day2");
    const r = await runPipeline(
      {
        ...base,
        gate: { ...base.gate, floors: [{ task: "click", metric: "auc", min: 0.99, on: "holdout" }] },
      },
      { registry, log },
    );
    expect(r.exitCode, why(r)).toBe(2);
    expect(r.record.reason).toMatch(
      /^the gate refused: floor click auc >= 0.99: 0\.\d+ is below the floor 0.99$/,
    );
    expect(r.record.published).toBeUndefined();
    expect(r.record.smoke).toBeUndefined();
    expect(await pointer()).toBe(v1.prefix);
    await expectStillServes(v1);
  });

  it("a better v2 is served without a redeploy, while 4 clients × 200 reranks see zero 5xx and only v1 and v2", async () => {
    const v1 = need("v1");
    const clients = 4;
    const perClient = 200;
    let load: Promise<Answer[][]> | undefined;
    let flippedAt: number | undefined;
    /** The clients stop after perClient answers, but not before v2 answered (at most 3 × as many, 90 s). */
    let sawV2 = false;
    let v2Version: string | undefined;
    const loadDeadline = performance.now() + 90_000;
    const client = async (): Promise<Answer[]> => {
      const answers: Answer[] = [];
      while (
        performance.now() < loadDeadline &&
        answers.length < 3 * perClient &&
        (answers.length < perClient || !sawV2)
      ) {
        const a = await rerank();
        answers.push(a);
        if (v2Version !== undefined && a.version === v2Version) sawV2 = true;
      }
      return answers;
    };
    const r = await runPipeline(config("day2"), {
      registry,
      log: (line) => {
        log(line);
        // The load starts before the candidate is checked and published, and runs through the flip.
        if (line.startsWith("evaluate ")) load ??= Promise.all(Array.from({ length: clients }, client));
        if (line.startsWith("publish ")) flippedAt = performance.now();
      },
    });
    expect(r.exitCode, why(r)).toBe(0);
    const v2 = publishedModel(r);
    v2Version = v2.version;
    models.v2 = v2;
    expect(r.record.gate!.blessed).toBe(true);
    expect(r.record.training).toMatchObject({ mode: "warm-start" });
    expect(r.record.published!.previous).toBe(v1.prefix);
    expect(r.record.smoke).toMatchObject({ passed: true, rerank: { modelVersion: v2.version } });
    // The smoke test saw v2 answer: let the clients see it too before they stop.
    sawV2 = sawV2 || (await rerank()).version === v2.version;
    expect(load, "the load started").toBeDefined();
    const answers = (await load!).flat();
    const tally: Record<string, number> = {};
    for (const a of answers) tally[show(a)] = (tally[show(a)] ?? 0) + 1;
    console.log(
      `e2e-wrangler: ${answers.length} reranks through the flip: ${JSON.stringify(tally)}; first v2 answer ${Math.round(Math.min(...answers.filter((a) => a.version === v2.version).map((a) => a.at)) - flippedAt!)} ms after the pointer write`,
    );
    expect(answers.length).toBeGreaterThanOrEqual(clients * perClient);
    expect(answers.filter((a) => a.status >= 500 || a.status === 0).length, JSON.stringify(tally)).toBe(0);
    expect(answers.filter((a) => a.status !== 200 || a.fallback).length, JSON.stringify(tally)).toBe(0);
    expect(Object.keys(tally).sort(), JSON.stringify(tally)).toEqual(
      [`200 ${v1.version}`, `200 ${v2.version}`].sort(),
    );
    // Each body names the model its header names.
    for (const a of answers) expect(a.id).toBe(a.version === v1.version ? v1.id : v2.id);
    // v1 answered before the flip, v2 after it; once v2 answered, v1 never did again.
    expect(answers.some((a) => a.version === v1.version && a.at < flippedAt!)).toBe(true);
    const firstV2 = Math.min(...answers.filter((a) => a.version === v2.version).map((a) => a.at));
    expect(firstV2).toBeGreaterThan(flippedAt!);
    expect(answers.filter((a) => a.version === v1.version && a.at > firstV2 + 1000).length).toBe(0);
    expect(server!.reloads(), "wrangler dev reloaded the worker").toBe(0);
    await expectStillServes(v2);
  });

  it("two runs at once: one refuses on the lock; the other's failed smoke test rolls the pointer back", async () => {
    const v2 = need("v2");
    // Nothing listens there: the smoke test cannot see the new model serve.
    const url = `http://127.0.0.1:${await freePort()}`;
    const cfg = config("day1r", { smoke: { url, timeoutS: 2, pollS: 0.2 } });
    const force = { reason: "e2e: reach the smoke test whatever the gate says" };
    // Each opens its own registry (a workerd of its own on the state), as two processes would.
    const [a, b] = await Promise.all([
      runPipeline(cfg, { log, forcePublish: force }),
      runPipeline(cfg, { log, forcePublish: force }),
    ]);
    const [locked, ran] = a.record.steps.length === 1 ? [a, b] : [b, a];
    expect(locked.exitCode, why(locked)).toBe(1);
    expect(locked.record.outcome).toBe("failed");
    expect(locked.record.reason).toMatch(/^locks\/pipeline is held by ".* run [0-9a-f]{8}" since /);
    expect(locked.record.reason).toContain(ran.record.runId);
    expect(locked.record.steps.map((s) => s.step)).toEqual(["lock"]);
    expect(ran.exitCode, why(ran)).toBe(1);
    expect(ran.record.outcome).toBe("rolled-back");
    expect(ran.record.smoke).toMatchObject({ passed: false });
    expect(ran.record.smoke!.detail).toMatch(/did not serve as champion within 2\.0 s: GET \/v1\/models: /);
    expect(ran.record.rollback).toMatchObject({
      pointer: "models/current",
      from: ran.record.published!.prefix,
      to: v2.prefix,
    });
    expect(await pointer()).toBe(v2.prefix);
    expect(await registry.get(LOCK_KEY)).toBeUndefined();
    // The worker may have picked the rolled-back model up for a moment; it is back on v2.
    await expectServes(v2);
    await expectStillServes(v2);
  });

  it("the rollback verb (mtrank pipeline rollback) points back at v1, which serves", async () => {
    const v1 = need("v1");
    const v2 = need("v2");
    const result = await runCli(["pipeline", "rollback", "--config", join(dir, "pipeline.json")], 60_000);
    expect(result.code, result.output).toBe(0);
    expect(result.output).toContain(`rolled back: models/current: ${v2.prefix} → ${v1.prefix}`);
    expect(await pointer()).toBe(v1.prefix);
    const newest = (await listRecords(registry, { limit: 1 }))[0]!.record as RunRecord;
    expect(newest).toMatchObject({ kind: "rollback", rollback: { from: v2.prefix, to: v1.prefix } });
    await expectServes(v1);
  });

  it("model.onnx changed in R2 between publish and flip: the worker keeps v1, the smoke test fails, the pointer goes back", async () => {
    const v1 = need("v1");
    let tampered: string | undefined;
    const tampering = beforeFirstFlip(registry, async (_name, prefix) => {
      // One byte of the verified upload, changed behind the pipeline's back: same size, other sha256.
      const key = `${prefix}model.onnx`;
      const object = await registry.get(key);
      if (!object) throw new Error(`${key} is not there`);
      const bytes = new Uint8Array(object.bytes);
      bytes[bytes.length >> 1]! ^= 0xff;
      await registry.put(key, bytes);
      tampered = prefix;
    });
    const r = await runPipeline(config("day2r", { smoke: { url: server!.base, timeoutS: 4, pollS: 0.2 } }), {
      registry: tampering,
      log,
      forcePublish: { reason: "e2e: reach the flip whatever the gate says" },
    });
    expect(tampered, why(r)).toBe(r.record.published?.prefix);
    expect(r.exitCode, why(r)).toBe(1);
    expect(r.record.outcome).toBe("rolled-back");
    // The worker verified the files the pointer named, refused them, and went on serving v1.
    expect(r.record.smoke!.detail, JSON.stringify(r.record.smoke)).toContain(
      `did not serve as champion within 4.0 s: serving ${v1.id} ${v1.version} (champion)`,
    );
    expect(r.record.rollback).toMatchObject({ from: tampered, to: v1.prefix });
    expect(await pointer()).toBe(v1.prefix);
    await expectStillServes(v1);
    // Flipping to that prefix again is refused by its verification, naming the file.
    await expect(flipPointer(registry, "models/current", tampered!)).rejects.toThrow(
      /^models\/[0-9a-f]{64}\/model\.onnx: sha256 [0-9a-f]{64}, expected [0-9a-f]{64}$/,
    );
    await expect(verifyPrefix(registry, tampered!)).rejects.toMatchObject({ file: "model.onnx" });
    expect(await pointer()).toBe(v1.prefix);
  });

  it("a run killed between upload and pointer flip publishes nothing that serves; the next run recovers", async () => {
    const v1 = need("v1");
    // A lock that expires 15 s after the killed run last renewed it (just before its flip), so the
    // next run may break it. Training cannot renew it, so the run must train within the 15 s:
    // a shorter lock expired under a loaded machine and the run refused its flip before the kill.
    const killedConfig = join(dir, "pipeline-killed.json");
    await writeFile(killedConfig, JSON.stringify(rawConfig("day2r", { lock: { ttlMinutes: 0.25 } })));
    const script = join(dir, "killed-run.mts");
    await writeFile(script, killedRunScript());
    const child = await runUntilKilled(script, [killedConfig], 60_000);
    expect(child.signal, child.output).toBe("SIGKILL");
    const killedAt = /^KILL models\/current (models\/[0-9a-f]{64}\/)$/m.exec(child.output);
    expect(killedAt, child.output).not.toBeNull();
    const orphan = killedAt![1]!;
    // Killed after every file was uploaded and verified, before the flip: no publish line.
    expect(child.output).toMatch(/^gate /m);
    expect(child.output).not.toMatch(/^publish /m);
    expect(child.leftInGroup).toEqual([]);
    // The pointer never moved: v1 serves; the orphan is whole but named by no pointer.
    expect(await pointer()).toBe(v1.prefix);
    expect((await verifyPrefix(registry, orphan)).prefix).toBe(orphan);
    expect(await registry.getPointer("models/challenger")).toBeUndefined();
    await expectStillServes(v1);
    // The dead run's lock is still there, naming it; it left no record.
    const lock = await registry.get(LOCK_KEY);
    expect(lock, "the killed run's lock").toBeDefined();
    const held = JSON.parse(new TextDecoder().decode(lock!.bytes)) as { owner: string; expiresAt: string };
    expect(held.owner).toContain(`pid ${child.pid} run `);
    const deadRun = /run ([0-9a-f]{8})$/.exec(held.owner)![1]!;
    const recorded = (await listRecords(registry, { limit: 5 })).map((e) => (e.record as RunRecord).runId);
    expect(recorded).not.toContain(deadRun);

    // The next run: the lock has expired, is broken, and the run publishes.
    const wait = Date.parse(held.expiresAt) - Date.now();
    if (wait > 0) await sleep(Math.min(wait + 100, 20_000));
    const r = await runPipeline(config("day2r"), {
      registry,
      log,
      forcePublish: { reason: "e2e: the run after a killed one" },
    });
    expect(r.exitCode, why(r)).toBe(0);
    const next = publishedModel(r);
    expect(r.record.published!.previous).toBe(v1.prefix);
    expect(r.record.smoke).toMatchObject({ passed: true });
    expect(await pointer()).toBe(next.prefix);
    expect(await registry.get(LOCK_KEY)).toBeUndefined();
    await expectServes(next);
    expect(server!.reloads(), "wrangler dev reloaded the worker").toBe(0);
  });
});

// ---- seams --------------------------------------------------------------------------------------

/** `inner`, with `hook` awaited once, just before the first pointer write (the run's flip). */
function beforeFirstFlip(
  inner: Registry,
  hook: (name: PointerName, prefix: string) => Promise<void>,
): Registry {
  let done = false;
  return {
    describe: inner.describe,
    get: (key) => inner.get(key),
    put: (key, bytes, options) => inner.put(key, bytes, options),
    delete: (key) => inner.delete(key),
    list: (prefix) => inner.list(prefix),
    getPointer: (name) => inner.getPointer(name),
    deletePointer: (name) => inner.deletePointer(name),
    async setPointer(name, prefix) {
      if (!done) {
        done = true;
        await hook(name, prefix);
      }
      await inner.setPointer(name, prefix);
    },
  };
}

/**
 * A pipeline run in its own process (group) that SIGKILLs that whole group, itself and its
 * registry's workerd, at the moment it would write the pointer: every file uploaded and verified,
 * the lock held, no record written. It prints its step lines and `KILL <pointer> <prefix>`.
 */
function killedRunScript(): string {
  const at = (path: string) => JSON.stringify(join(ROOT, path));
  return `
import { loadConfig } from ${at("trainer/pipeline/config.ts")};
import { openRegistry, runPipeline } from ${at("trainer/pipeline/run.ts")};

const config = await loadConfig(process.argv[2]);
const inner = await openRegistry(config.registry);
const say = (line) => process.stdout.write(line + "\\n"); // synchronous on a pipe
const registry = {
  describe: inner.describe,
  get: (key) => inner.get(key),
  put: (key, bytes, options) => inner.put(key, bytes, options),
  delete: (key) => inner.delete(key),
  list: (prefix) => inner.list(prefix),
  getPointer: (name) => inner.getPointer(name),
  deletePointer: (name) => inner.deletePointer(name),
  async setPointer(name, prefix) {
    say("KILL " + name + " " + prefix);
    process.kill(-process.pid, "SIGKILL");
    await new Promise(() => {});
  },
};
const r = await runPipeline(config, { registry, log: say, forcePublish: { reason: "e2e: killed before the flip" } });
// Not killed: the run ended before its flip. Say why and exit (the registry's workerd would keep this process up).
say("NOT KILLED: " + r.record.outcome + ": " + r.record.reason);
await inner.close();
process.exit(3);
`;
}

interface Exited {
  pid: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  output: string;
  /** Processes of its group still alive after it ended (after a SIGKILL to the group). */
  leftInGroup: number[];
}

/** Runs `node --import tsx script args` as a process group leader; the group is killed at `timeoutMs`. */
async function runUntilKilled(script: string, args: string[], timeoutMs: number): Promise<Exited> {
  const child = spawn(process.execPath, ["--import", join(ROOT, "bin", "register.js"), script, ...args], {
    cwd: ROOT,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  return collect(child, timeoutMs);
}

/** `mtrank <args>` (bin/mtrank.js) in a process group of its own, killed at `timeoutMs`. */
async function runCli(args: string[], timeoutMs: number): Promise<Exited> {
  const child = spawn(process.execPath, [join(ROOT, "bin", "mtrank.js"), ...args], {
    cwd: ROOT,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  return collect(child, timeoutMs);
}

async function collect(child: ChildProcess, timeoutMs: number): Promise<Exited> {
  const pid = child.pid;
  if (pid === undefined) throw new Error("could not start a child process");
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  const killGroup = () => {
    try {
      process.kill(-pid, "SIGKILL");
    } catch {
      // The group is empty.
    }
  };
  const timer = setTimeout(killGroup, timeoutMs);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((done) => {
    if (child.exitCode !== null || child.signalCode !== null) done([child.exitCode, child.signalCode]);
    else child.once("exit", (c, s) => done([c, s]));
  });
  clearTimeout(timer);
  // Whatever it left in its group (a workerd) goes too; then the group must be empty.
  killGroup();
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline && groupProcesses(pid).some((p) => p.state !== "Z")) await sleep(100);
  const leftInGroup = groupProcesses(pid)
    .filter((p) => p.state !== "Z")
    .map((p) => p.pid);
  return { pid, code, signal, output, leftInGroup };
}

describe("the smoke test's detail when its last poll is cut short by the deadline", () => {
  it("keeps what the last answer showed (here: the old model serving)", async () => {
    let calls = 0;
    // Answers once with the old model, then hangs until the request's signal aborts it.
    const hanging: typeof fetch = async (_input, init) => {
      calls++;
      if (calls === 1) return Response.json({ models: [{ id: "old", version: "v0", arm: "champion" }] });
      return new Promise<Response>((_resolve, reject) => {
        const signal = init?.signal;
        signal?.addEventListener("abort", () => reject(signal.reason), { once: true });
      });
    };
    const r = await smokeTest({
      url: "http://127.0.0.1:1",
      expected: { id: "new", version: "v1" },
      manifest: JSON.parse(
        await readFile(join(ROOT, "fixtures", "model", "manifest.json"), "utf8"),
      ) as ModelManifest,
      pointer: "current",
      timeoutMs: 300,
      pollMs: 50,
      fetch: hanging,
    });
    expect(r.passed).toBe(false);
    expect(r.detail).toBe(
      "new v1 did not serve as champion within 0.3 s: serving old v0 (champion); then GET /v1/models: timed out at the deadline",
    );
  });
});
