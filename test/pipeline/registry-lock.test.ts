/**
 * The pipeline lock: one holder at a time, even among concurrent acquirers (in memory and over
 * wrangler's local state, where the conditional put is workerd's), a held lock named with its
 * owner and since when, a stale lock broken once, release that never deletes another's lock.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Registry } from "../../trainer/pipeline/contracts.ts";
import { LocalRegistry } from "../../trainer/pipeline/registry/local.ts";
import {
  acquireLock,
  LOCK_KEY,
  LockHeldError,
  removeLock,
  startHeartbeat,
  takeLock,
} from "../../trainer/pipeline/registry/lock.ts";
import { MemoryRegistry } from "./memory-registry.ts";

const T0 = Date.parse("2026-11-24T02:00:00.000Z");
const HOUR = 3_600_000;

describe("acquireLock", () => {
  it("writes owner, acquiredAt and expiresAt; a second acquire names the holder and since when", async () => {
    const registry = new MemoryRegistry();
    const release = await acquireLock(registry, { owner: "nightly on ci-7", ttlMs: HOUR, now: () => T0 });
    const body = JSON.parse(new TextDecoder().decode((await registry.get(LOCK_KEY))!.bytes)) as Record<
      string,
      unknown
    >;
    expect(body).toMatchObject({
      owner: "nightly on ci-7",
      acquiredAt: "2026-11-24T02:00:00.000Z",
      expiresAt: "2026-11-24T03:00:00.000Z",
    });
    const second = acquireLock(registry, { owner: "manual run", ttlMs: HOUR, now: () => T0 + 60_000 });
    await expect(second).rejects.toThrow(LockHeldError);
    await expect(second).rejects.toThrow(
      'locks/pipeline is held by "nightly on ci-7" since 2026-11-24T02:00:00.000Z (until 2026-11-24T03:00:00.000Z)',
    );
    await expect(second).rejects.toMatchObject({
      owner: "nightly on ci-7",
      acquiredAt: "2026-11-24T02:00:00.000Z",
    });

    expect(await release()).toBe(true);
    expect(await registry.get(LOCK_KEY)).toBeUndefined();
    expect(await release()).toBe(false);
    const again = await acquireLock(registry, { owner: "manual run", ttlMs: HOUR, now: () => T0 + 60_000 });
    await again();
  });

  it("breaks an expired lock once, and the old holder's release then leaves the new lock alone", async () => {
    const registry = new MemoryRegistry();
    let t = T0;
    const now = () => t;
    const releaseDead = await acquireLock(registry, { owner: "crashed run", ttlMs: HOUR, now });
    t = T0 + HOUR - 1;
    await expect(acquireLock(registry, { owner: "next run", ttlMs: HOUR, now })).rejects.toThrow(
      LockHeldError,
    );
    t = T0 + HOUR + 1;
    const release = await acquireLock(registry, { owner: "next run", ttlMs: HOUR, now });
    expect(await releaseDead()).toBe(false);
    const body = JSON.parse(new TextDecoder().decode((await registry.get(LOCK_KEY))!.bytes)) as {
      owner: string;
    };
    expect(body.owner).toBe("next run");
    expect(await release()).toBe(true);
  });

  it("of runs finding the same stale lock at once, one takes it", async () => {
    const registry = new MemoryRegistry();
    let t = T0;
    await acquireLock(registry, { owner: "crashed run", ttlMs: 1000, now: () => t });
    t = T0 + 5000;
    const results = await Promise.allSettled(
      Array.from({ length: 5 }, (_, i) =>
        acquireLock(registry, { owner: `run ${i}`, ttlMs: HOUR, now: () => t }),
      ),
    );
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    for (const r of results) if (r.status === "rejected") expect(r.reason).toBeInstanceOf(LockHeldError);
  });

  it("refuses a lock object it cannot read rather than breaking it", async () => {
    const registry = new MemoryRegistry();
    await registry.put(LOCK_KEY, new TextEncoder().encode("not json"));
    await expect(acquireLock(registry, { owner: "x", ttlMs: HOUR })).rejects.toThrow(
      /locks\/pipeline in memory: is not a lock this pipeline wrote; delete it by hand/,
    );
  });

  it("checks its options", async () => {
    const registry = new MemoryRegistry();
    await expect(acquireLock(registry, { owner: "x", ttlMs: 0 })).rejects.toThrow(RangeError);
    await expect(acquireLock(registry, { owner: " ", ttlMs: HOUR })).rejects.toThrow(RangeError);
  });
});

describe("renewing a lock", () => {
  const expiry = async (registry: Registry) =>
    (JSON.parse(new TextDecoder().decode((await registry.get(LOCK_KEY))!.bytes)) as { expiresAt: string })
      .expiresAt;

  it("extends the holder's own lock; says why once it is expired, removed or another's", async () => {
    const registry = new MemoryRegistry();
    let t = T0;
    const lock = await takeLock(registry, { owner: "nightly", ttlMs: HOUR, now: () => t });
    t = T0 + HOUR / 2;
    expect(await lock.renew()).toBeUndefined();
    expect(await expiry(registry)).toBe("2026-11-24T03:30:00.000Z");
    t = T0 + 2 * HOUR;
    expect(await lock.renew()).toBe("locks/pipeline expired at 2026-11-24T03:30:00.000Z");
    // Another breaks it: the renewal must not write over theirs.
    await acquireLock(registry, { owner: "operator", ttlMs: HOUR, now: () => t });
    expect(await lock.renew()).toBe(
      'locks/pipeline is now held by "operator" since 2026-11-24T04:00:00.000Z',
    );
    await removeLock(registry, { force: true });
    expect(await lock.renew()).toMatch(/^locks\/pipeline is gone/);
    expect(await registry.get(LOCK_KEY)).toBeUndefined();
  });

  it("a heartbeat keeps a lock past its TTL, and reports it lost once it is taken away", async () => {
    const registry = new MemoryRegistry();
    const lock = await takeLock(registry, { owner: "long run", ttlMs: 300 });
    const beat = startHeartbeat(lock, 50);
    await new Promise((resolve) => setTimeout(resolve, 900));
    await expect(acquireLock(registry, { owner: "operator", ttlMs: HOUR })).rejects.toThrow(LockHeldError);
    expect(beat.lost).toBeUndefined();
    await removeLock(registry, { force: true });
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(beat.lost).toMatch(/^locks\/pipeline is gone/);
    await beat.stop();
    expect(await lock.release()).toBe(false);
  });
});

describe("acquireLock over wrangler's local state", () => {
  let dir: string;
  let registry: LocalRegistry;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "mtrank-lock-"));
    registry = new LocalRegistry({ persistTo: dir });
  });
  afterAll(async () => {
    await registry?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function contend(registries: Registry[], n: number) {
    const results = await Promise.allSettled(
      Array.from({ length: n }, (_, i) =>
        acquireLock(registries[i % registries.length]!, { owner: `run ${i}`, ttlMs: HOUR }),
      ),
    );
    const winners = results.filter((r) => r.status === "fulfilled");
    expect(winners).toHaveLength(1);
    for (const r of results) if (r.status === "rejected") expect(r.reason).toBeInstanceOf(LockHeldError);
    await (winners[0] as PromiseFulfilledResult<() => Promise<boolean>>).value();
  }

  it("gives the lock to exactly one of many concurrent acquirers", async () => {
    for (let round = 0; round < 3; round++) await contend([registry], 10);
    expect(await registry.get(LOCK_KEY)).toBeUndefined();
  });

  it("and to exactly one when they are separate processes on the same state folder", async () => {
    // A second workerd on the same SQLite files, as two pipeline runs on one machine would be.
    const other = new LocalRegistry({ persistTo: dir });
    try {
      await other.list("warm-up/");
      for (let round = 0; round < 3; round++) await contend([registry, other], 8);
    } finally {
      await other.close();
    }
  }, 60_000);
});
