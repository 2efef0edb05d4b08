/**
 * The operator's verbs on a registry in memory: promote then rollback (the pointer's history read
 * from the records), and unlock, which removes a lock a killed run left only when that is safe
 * or forced, and records it.
 */
import { spawnSync } from "node:child_process";
import { hostname } from "node:os";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { promote, rollback, runHistory, unlock } from "../../trainer/pipeline/ops.ts";
import {
  acquireLock,
  LOCK_KEY,
  LockHeldError,
  ownerIsGone,
  processOwner,
} from "../../trainer/pipeline/registry/lock.ts";
import { flipPointer, publishModel } from "../../trainer/pipeline/registry/publish.ts";
import { type FixtureModels, fixtureModels } from "./fixture-models.ts";
import { MemoryRegistry } from "./memory-registry.ts";

let models: FixtureModels | undefined;
let dirA: string;
let dirB: string;

beforeAll(async () => {
  models = await fixtureModels("mtrank-ops-");
  ({ dirA, dirB } = models);
});
afterAll(async () => {
  await models?.remove();
});

/** The pid of a process that has exited. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], {
    encoding: "utf8",
  });
  return Number(child.stdout);
}

describe("promote, then rollback", () => {
  it("rolls models/current back to what it named before the promote, and says promoted", async () => {
    const registry = new MemoryRegistry();
    const a = await publishModel(registry, dirA);
    await flipPointer(registry, "models/current", a);
    const b = await publishModel(registry, dirB);
    await flipPointer(registry, "models/challenger", b);

    const promoted = await promote(registry);
    expect(await registry.getPointer("models/current")).toBe(b.prefix);
    expect(await registry.getPointer("models/challenger")).toBeUndefined();
    expect(promoted.reason).toContain(`models/current: ${a.prefix} → ${b.prefix}`);

    const back = await rollback(registry);
    expect(await registry.getPointer("models/current")).toBe(a.prefix);
    expect(back.reason).toBe(
      `models/current: ${b.prefix} → ${a.prefix} (${a.id} ${a.version}); what models/current named before promote ${promoted.runId} promoted ${b.prefix}`,
    );
    expect((await runHistory(registry)).map((r) => r.kind)).toEqual(["rollback", "promote"]);
  });
});

/** A registry whose next write to models/current, once armed, lands and then reports a failure. */
class LandThenFail extends MemoryRegistry {
  armed = false;
  override async setPointer(name: Parameters<MemoryRegistry["setPointer"]>[0], prefix: string) {
    await super.setPointer(name, prefix);
    if (this.armed && name === "models/current") {
      this.armed = false;
      throw new Error(`KV PUT ${name} failed: TimeoutError`);
    }
  }
}

describe("a promote whose pointer write lands and then fails", () => {
  it("puts models/current back and records the attempt and the rollback", async () => {
    const registry = new LandThenFail();
    const a = await publishModel(registry, dirA);
    await flipPointer(registry, "models/current", a);
    const b = await publishModel(registry, dirB);
    await flipPointer(registry, "models/challenger", b);
    registry.armed = true;
    await expect(promote(registry)).rejects.toThrow("KV PUT models/current failed: TimeoutError");
    expect(await registry.getPointer("models/current")).toBe(a.prefix);
    expect(await registry.getPointer("models/challenger")).toBe(b.prefix);
    const [stored] = await runHistory(registry);
    expect(stored).toMatchObject({
      kind: "promote",
      outcome: "rolled-back",
      published: { pointer: "models/current", prefix: b.prefix, previous: a.prefix },
      rollback: { pointer: "models/current", from: b.prefix, to: a.prefix },
    });
    expect(await registry.get(LOCK_KEY)).toBeUndefined();
  });
});

describe("unlock", () => {
  const T0 = Date.parse("2026-12-07T02:00:00.000Z");
  const HOUR = 3_600_000;

  it("says no lock is held and records nothing", async () => {
    const registry = new MemoryRegistry();
    expect(await unlock(registry)).toBeUndefined();
    expect(await runHistory(registry)).toEqual([]);
  });

  it("keeps a lock whose holder may be running unless forced, and records a forced removal", async () => {
    const registry = new MemoryRegistry();
    await acquireLock(registry, { owner: "ci-7 pid 4242 run r1", ttlMs: HOUR, now: () => T0 });
    const refused = unlock(registry, { now: () => T0 + 60_000 });
    await expect(refused).rejects.toThrow(LockHeldError);
    await expect(refused).rejects.toThrow(/held by "ci-7 pid 4242 run r1" .* may be a live run; --force/);
    expect(await registry.get(LOCK_KEY)).toBeDefined();

    const record = await unlock(registry, { force: true, now: () => T0 + 60_000 });
    expect(await registry.get(LOCK_KEY)).toBeUndefined();
    expect(record?.reason).toBe(
      'removed locks/pipeline held by "ci-7 pid 4242 run r1" since 2026-12-07T02:00:00.000Z (forced)',
    );
    const [stored] = await runHistory(registry);
    expect(stored).toMatchObject({ kind: "unlock", outcome: "done", reason: record?.reason });
  });

  it("removes an expired lock without --force", async () => {
    const registry = new MemoryRegistry();
    await acquireLock(registry, { owner: "ci-7 pid 4242 run r1", ttlMs: HOUR, now: () => T0 });
    const record = await unlock(registry, { now: () => T0 + HOUR });
    expect(record?.reason).toMatch(/\(expired\)$/);
    expect(await registry.get(LOCK_KEY)).toBeUndefined();
  });

  it("removes the lock of a process on this host that is gone, and keeps a live one's", async () => {
    const registry = new MemoryRegistry();
    const gone = `${hostname()} pid ${deadPid()} run r2`;
    expect(ownerIsGone(gone)).toBe(true);
    await acquireLock(registry, { owner: gone, ttlMs: HOUR });
    expect((await unlock(registry))?.reason).toMatch(/\(holder gone\)$/);

    // This process, on this host: alive. The same pid on another host: cannot tell.
    expect(ownerIsGone(processOwner("run r3"))).toBe(false);
    expect(ownerIsGone(`not-${hostname()} pid ${deadPid()} run r4`)).toBe(false);
    await acquireLock(registry, { owner: processOwner("run r3"), ttlMs: HOUR });
    await expect(unlock(registry)).rejects.toThrow(/may be a live run/);
  });

  it("removes an unreadable lock object only when forced", async () => {
    const registry = new MemoryRegistry();
    await registry.put(LOCK_KEY, new TextEncoder().encode("not json"));
    await expect(unlock(registry)).rejects.toThrow(/held by "\(unreadable\)"/);
    expect((await unlock(registry, { force: true }))?.reason).toMatch(/\(forced\)$/);
  });
});
