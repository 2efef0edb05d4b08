/**
 * A run killed around its pointer flip (trainer/pipeline/intent.ts): the flip intent it wrote
 * before the flip lets the next run, `status`, `rollback`, `promote` and `gc` know that the
 * pointer may name a model no smoke test passed and no record describes. A run is "killed" at a
 * registry call: from then on every call of its registry never answers, as after a SIGKILL, and
 * the operator removes its lock (`unlock --force`). Runs against an in-memory registry with a tiny
 * network, no infra check and a stand-in worker that serves whatever models/current names.
 */

import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PointerName, Registry } from "../../trainer/pipeline/contracts.ts";
import { INTENT_KEY, readIntent } from "../../trainer/pipeline/intent.ts";
import {
  collectGarbage,
  formatStatus,
  pipelineStatus,
  promote,
  rollback,
} from "../../trainer/pipeline/ops.ts";
import type { RunRecord } from "../../trainer/pipeline/record.ts";
import { listRecords } from "../../trainer/pipeline/registry/history.ts";
import { LOCK_KEY, removeLock } from "../../trainer/pipeline/registry/lock.ts";
import { runPipeline } from "../../trainer/pipeline/run.ts";
import { toCsv } from "../../trainer/simulate/simulator.ts";
import { MemoryRegistry } from "./memory-registry.ts";
import { smallConfig, smallDays } from "./small-days.ts";

let dir: string;
const log = () => {};

beforeAll(async () => {
  const days = await smallDays("mtrank-pipeline-intent-");
  dir = days.dir;
  // A day after the dead run's.
  await mkdir(join(dir, "day3"));
  await writeFile(join(dir, "day3", "part-0.csv"), toCsv(days.rows.slice(9000, 12000)));
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** A registry call, as the kill point sees it. */
type Call = { op: "put" | "setPointer" | "deletePointer" | "delete"; key: string };

/**
 * `inner`, until `at` says a call is where the process dies: "before" it reaches the registry or
 * "after" it did. From then on no call answers. `died` resolves then.
 */
class Killed implements Registry {
  readonly describe: string;
  readonly died: Promise<void>;
  private dead = false;
  private die!: () => void;

  constructor(
    private readonly inner: MemoryRegistry,
    private readonly at: (call: Call) => "before" | "after" | undefined,
  ) {
    this.describe = inner.describe;
    this.died = new Promise((resolve) => {
      this.die = () => {
        this.dead = true;
        resolve();
      };
    });
  }

  private async call<T>(call: Call | undefined, body: () => Promise<T>): Promise<T> {
    if (this.dead) return never();
    const when = call && this.at(call);
    if (when === "before") {
      this.die();
      return never();
    }
    const result = await body();
    if (when === "after") {
      this.die();
      return never();
    }
    return result;
  }

  get(key: string) {
    return this.call(undefined, () => this.inner.get(key));
  }
  put(key: string, bytes: Uint8Array, options?: { ifAbsent?: boolean }) {
    return this.call({ op: "put", key }, () => this.inner.put(key, bytes, options));
  }
  delete(key: string) {
    return this.call({ op: "delete", key }, () => this.inner.delete(key));
  }
  list(prefix: string) {
    return this.call(undefined, () => this.inner.list(prefix));
  }
  getPointer(name: PointerName) {
    return this.call(undefined, () => this.inner.getPointer(name));
  }
  setPointer(name: PointerName, prefix: string) {
    return this.call({ op: "setPointer", key: name }, () => this.inner.setPointer(name, prefix));
  }
  deletePointer(name: PointerName) {
    return this.call({ op: "deletePointer", key: name }, () => this.inner.deletePointer(name));
  }
}

function never<T>(): Promise<T> {
  return new Promise<T>(() => {});
}

/** Kill points: right before the flip, right after it (before the smoke test), before the record. */
const BEFORE_FLIP = (c: Call) => (c.op === "setPointer" ? "before" : undefined);
const AFTER_FLIP = (c: Call) => (c.op === "setPointer" ? "after" : undefined);
const BEFORE_RECORD = (c: Call) => (c.op === "put" && c.key.startsWith("runs/") ? "before" : undefined);
const AFTER_RECORD = (c: Call) => (c.op === "delete" && c.key === INTENT_KEY ? "before" : undefined);

/**
 * A worker stand-in: /v1/models lists what models/current names in `reg`, and /v1/rerank answers
 * with it, falling back to the input order for a model in `broken`.
 */
async function worker(reg: MemoryRegistry, broken: Set<string>) {
  const serving = () => {
    const prefix = reg.pointers.get("models/current");
    const manifest = prefix && reg.objects.get(`${prefix}manifest.json`);
    if (!prefix || !manifest) return undefined;
    const { id, version } = JSON.parse(new TextDecoder().decode(manifest.bytes)) as {
      id: string;
      version: string;
    };
    return { prefix, id, version };
  };
  const server: Server = createServer((req, res) => {
    const model = serving();
    if (req.method === "GET") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(
        JSON.stringify({ models: model ? [{ id: model.id, version: model.version, arm: "champion" }] : [] }),
      );
      return;
    }
    let text = "";
    req.on("data", (c: Buffer) => {
      text += c.toString();
    });
    req.on("end", () => {
      const body = JSON.parse(text) as { candidates: { id: string }[] };
      const fallback = !model || broken.has(model.prefix);
      res.writeHead(200, {
        "content-type": "application/json",
        ...(model ? { "x-model-version": model.version } : {}),
        ...(fallback ? { "x-mtrank-fallback": "1" } : {}),
      });
      res.end(
        JSON.stringify({
          model: model && { id: model.id, version: model.version },
          fallback,
          items: body.candidates.map((c) => ({ id: c.id })),
        }),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/**
 * day1 published (smoke test passed against the stand-in); a run of day2 killed at `at`; its
 * lock removed. Returns the registry, the stand-in, the first model and the dead run's intent.
 */
async function killedRun(at: (c: Call) => "before" | "after" | undefined, smoke = true) {
  const reg = new MemoryRegistry();
  const broken = new Set<string>();
  const w = await worker(reg, broken);
  const config = (day: string) =>
    smallConfig(dir, day, smoke ? { smoke: { url: w.url, timeoutS: 3, pollS: 0.05 } } : {});
  const r1 = await runPipeline(config("day1"), { registry: reg, log });
  expect(r1.record.outcome, r1.record.reason).toBe("published");
  const first = r1.record.published!.prefix;
  const killed = new Killed(reg, at);
  void runPipeline(config("day2"), { registry: killed, log });
  await killed.died;
  const intent = await readIntent(reg);
  expect(intent).toBeDefined();
  // Its process is gone: the operator removes its lock.
  expect(await reg.get(LOCK_KEY)).toBeDefined();
  await removeLock(reg, { force: true });
  return { reg, broken, worker: w, config, first, intent: intent! };
}

async function recordOf(reg: MemoryRegistry, runId: string): Promise<RunRecord | undefined> {
  return (await listRecords(reg)).map((e) => e.record as RunRecord).find((r) => r.runId === runId);
}

describe("a run killed around its flip", { timeout: 120_000 }, () => {
  it("before the flip: the intent is written; the next run stores the dead run's record as failed and publishes", async () => {
    const { reg, worker: w, config, first, intent } = await killedRun(BEFORE_FLIP);
    try {
      expect(intent).toMatchObject({ pointer: "models/current", previous: first });
      expect(await reg.getPointer("models/current")).toBe(first);
      expect((await pipelineStatus(reg)).pendingFlip).toMatchObject({ serving: false });
      const r = await runPipeline(config("day3"), { registry: reg, log });
      expect(r.record.outcome, r.record.reason).toBe("published");
      expect(r.record.recovered).toMatchObject({
        runId: intent.runId,
        action: "not-flipped",
        detail: expect.stringMatching(
          /models\/current names models\/[0-9a-f]{64}\/ now, not its candidate: nothing to undo$/,
        ),
      });
      expect(r.record.champion?.prefix).toBe(first);
      expect(r.record.published!.previous).toBe(first);
      expect(await recordOf(reg, intent.runId)).toMatchObject({
        outcome: "failed",
        candidate: { id: intent.candidate.id },
      });
      expect(await reg.get(INTENT_KEY)).toBeUndefined();
    } finally {
      await w.close();
    }
  });

  it("after the flip, before the smoke test, a model that fails it: status says so; the next run puts the previous model back first", async () => {
    const { reg, broken, worker: w, config, first, intent } = await killedRun(AFTER_FLIP);
    try {
      const candidate = intent.candidate.prefix;
      expect(await reg.getPointer("models/current")).toBe(candidate);
      broken.add(candidate);
      const status = formatStatus(await pipelineStatus(reg));
      expect(status).toContain(
        `pending flip: run ${intent.runId} (started ${intent.record.startedAt}) set models/current to ${candidate} (${intent.candidate.id} ${intent.candidate.version}; it named ${first} before) at ${intent.writtenAt} and did not finish; the model serves without a passed smoke test; the next \`mtrank pipeline run\` settles it`,
      );
      // No record of the flip, but `promote` and `gc` know of it.
      await expect(promote(reg)).rejects.toThrow(/^a flip is pending: run /);
      const gc = await collectGarbage(reg, 0, { dryRun: true });
      expect(gc.gc!.deleted).not.toContain(first);
      // A dry run holds no lock: it says so and leaves it.
      const dry = await runPipeline(config("day3"), { registry: reg, log, dryRun: true });
      expect(dry.record.recovered).toMatchObject({ action: "left", runId: intent.runId });
      expect(await reg.get(INTENT_KEY)).toBeDefined();

      const r = await runPipeline(config("day3"), { registry: reg, log });
      expect(r.record.recovered).toMatchObject({
        action: "rolled-back",
        candidate,
        previous: first,
        smoke: { passed: false },
      });
      expect(r.record.recovered!.detail).toMatch(
        /; smoke test: POST \/v1\/rerank: .* fell back to the input order .*: models\/current put back to models\/[0-9a-f]{64}\/$/,
      );
      expect(await readFile(r.files.html, "utf8")).toContain("<dt>earlier flip</dt><dd>rolled-back: run ");
      // The candidate is judged against the model that served before the dead run's flip.
      expect(r.record.champion?.prefix).toBe(first);
      expect(r.record.outcome, r.record.reason).toBe("published");
      expect(r.record.published!.previous).toBe(first);
      expect(await recordOf(reg, intent.runId)).toMatchObject({
        outcome: "rolled-back",
        rollback: { pointer: "models/current", from: candidate, to: first },
      });
      expect(await reg.get(INTENT_KEY)).toBeUndefined();
    } finally {
      await w.close();
    }
  });

  it("after the smoke test passed, before the record: the next run keeps the model and stores the record, so its day is not trained again and rollback finds what it replaced", async () => {
    const { reg, worker: w, config, first, intent } = await killedRun(BEFORE_RECORD);
    try {
      const candidate = intent.candidate.prefix;
      expect(await reg.getPointer("models/current")).toBe(candidate);
      // The dead run's own day again: its files are in the record settling stores.
      const r = await runPipeline(config("day2"), { registry: reg, log });
      expect(r.record.recovered).toMatchObject({ action: "kept", smoke: { passed: true } });
      expect(r.record.recovered!.detail).toMatch(/serves on \(its smoke test passed\)$/);
      const dead = await recordOf(reg, intent.runId);
      expect(dead).toMatchObject({ outcome: "published", published: { prefix: candidate, previous: first } });
      expect(dead!.data!.files.length).toBe(1);
      expect(r.record.champion?.prefix).toBe(candidate);
      expect(r.record.outcome).toBe("refused");
      expect(r.record.reason).toMatch(
        new RegExp(
          `^the day's data was published before: its file has the sha256 of the data of run ${intent.runId} `,
        ),
      );
      const back = await rollback(reg);
      expect(back.rollback).toMatchObject({ from: candidate, to: first });
      expect(await reg.get(INTENT_KEY)).toBeUndefined();
    } finally {
      await w.close();
    }
  });

  it("after its record was stored, before the intent was removed: the next run removes it, testing nothing again", async () => {
    const { reg, worker: w, config, intent } = await killedRun(AFTER_RECORD);
    try {
      expect(await recordOf(reg, intent.runId)).toMatchObject({ outcome: "published" });
      const r = await runPipeline(config("day3"), { registry: reg, log });
      expect(r.record.recovered).toMatchObject({ action: "kept" });
      expect(r.record.recovered!.detail).toMatch(/serves on \(its record says it published\)$/);
      expect(r.record.recovered!.stored).toBeUndefined();
      expect(r.record.champion?.prefix).toBe(intent.candidate.prefix);
      expect(await reg.get(INTENT_KEY)).toBeUndefined();
    } finally {
      await w.close();
    }
  });

  it("without a smoke test, after the flip: the next run keeps the model the gate blessed and records it", async () => {
    const { reg, worker: w, config, first, intent } = await killedRun(AFTER_FLIP, false);
    try {
      const r = await runPipeline(config("day3"), { registry: reg, log });
      expect(r.record.recovered).toMatchObject({ action: "kept" });
      expect(r.record.recovered!.detail).toMatch(/serves on \(no smoke test is configured\)$/);
      expect(await recordOf(reg, intent.runId)).toMatchObject({
        outcome: "published",
        published: { prefix: intent.candidate.prefix, previous: first },
      });
      expect(r.record.champion?.prefix).toBe(intent.candidate.prefix);
    } finally {
      await w.close();
    }
  });

  it("a run whose pointer could not be put back leaves the intent; the next run puts it back", async () => {
    /** The flip lands and reports an error (a timeout); the write that would undo it fails. */
    class Unlucky extends MemoryRegistry {
      writes = 0;
      override async setPointer(name: PointerName, prefix: string): Promise<void> {
        this.writes++;
        if (this.writes === 2) {
          await super.setPointer(name, prefix);
          throw new Error(`KV PUT ${name} failed: TimeoutError`);
        }
        if (this.writes === 3) throw new Error(`KV PUT ${name} failed: 503`);
        await super.setPointer(name, prefix);
      }
    }
    const reg = new Unlucky();
    const config = (day: string) => smallConfig(dir, day);
    const first = (await runPipeline(config("day1"), { registry: reg, log })).record.published!.prefix;
    const r = await runPipeline(config("day2"), { registry: reg, log });
    const candidate = r.record.published!.prefix;
    expect(r.record.reason).toBe(
      `KV PUT models/current failed: TimeoutError; rolling back failed too: KV PUT models/current failed: 503 (${INTENT_KEY} stays: the next run puts ${first} back)`,
    );
    expect(await reg.getPointer("models/current")).toBe(candidate);
    expect(await readIntent(reg)).toMatchObject({ runId: r.record.runId, previous: first });
    const next = await runPipeline(config("day3"), { registry: reg, log });
    expect(next.record.recovered).toMatchObject({ action: "rolled-back", candidate, previous: first });
    expect(next.record.recovered!.detail).toContain(
      "the run's own record ends failed: KV PUT models/current failed: TimeoutError",
    );
    expect(next.record.champion?.prefix).toBe(first);
    expect(await reg.get(INTENT_KEY)).toBeUndefined();
  });

  it("`rollback` puts back what the pointer named before the dead run's flip, and settles the intent", async () => {
    const { reg, worker: w, first, intent } = await killedRun(AFTER_FLIP);
    try {
      const back = await rollback(reg);
      expect(back.rollback).toEqual({
        pointer: "models/current",
        from: intent.candidate.prefix,
        to: first,
        why: `what models/current named before run ${intent.runId} set it to ${intent.candidate.prefix} and did not finish (${INTENT_KEY})`,
      });
      expect(await reg.getPointer("models/current")).toBe(first);
      expect(back.recovered).toMatchObject({ action: "not-flipped", runId: intent.runId });
      expect(await recordOf(reg, intent.runId)).toMatchObject({ outcome: "failed" });
      expect(await reg.get(INTENT_KEY)).toBeUndefined();
      expect((await pipelineStatus(reg)).pendingFlip).toBeUndefined();
    } finally {
      await w.close();
    }
  });
});
