/**
 * Run records (append-only, newest first) and gc: it deletes only model directories that no
 * pointer, none of the newest `keep` records and no `protect` entry names, and never a record.
 */
import { describe, expect, it } from "vitest";
import {
  gc,
  HistoryError,
  listRecords,
  putRecord,
  RecordExistsError,
  recordKey,
  recordPrefixes,
} from "../../trainer/pipeline/registry/history.ts";
import { LOCK_KEY } from "../../trainer/pipeline/registry/lock.ts";
import { MemoryRegistry } from "./memory-registry.ts";

const prefix = (n: number) => `models/${n.toString(16).padStart(64, "0")}/`;

/** A registry holding model directories 1..n (manifest.json + model.onnx each). */
async function withModels(n: number): Promise<MemoryRegistry> {
  const registry = new MemoryRegistry();
  for (let i = 1; i <= n; i++) {
    await registry.put(`${prefix(i)}model.onnx`, new Uint8Array([i]));
    await registry.put(`${prefix(i)}manifest.json`, new TextEncoder().encode("{}"));
  }
  return registry;
}

describe("run records", () => {
  it("are written once under runs/<UTC time>-<run id>.json and listed newest first", async () => {
    const registry = new MemoryRegistry();
    const key = await putRecord(registry, {
      runId: "r1",
      startedAt: "2026-11-24T03:00:00+01:00",
      published: { prefix: prefix(1) },
    });
    expect(key).toBe("runs/2026-11-24T02:00:00.000Z-r1.json");
    await putRecord(registry, { runId: "r3", startedAt: "2026-11-26T02:00:00.000Z" });
    await putRecord(registry, { runId: "r2", startedAt: "2026-11-25T02:00:00.000Z", outcome: "held" });
    const all = await listRecords(registry);
    expect(all.map((e) => e.key)).toEqual([
      "runs/2026-11-26T02:00:00.000Z-r3.json",
      "runs/2026-11-25T02:00:00.000Z-r2.json",
      "runs/2026-11-24T02:00:00.000Z-r1.json",
    ]);
    expect(all[1]!.record).toEqual({ runId: "r2", startedAt: "2026-11-25T02:00:00.000Z", outcome: "held" });
    expect((await listRecords(registry, { limit: 2 })).map((e) => e.key)).toHaveLength(2);
    expect(await listRecords(registry, { limit: 0 })).toEqual([]);
  });

  it("list the newest records a filter keeps, reading at most `scan`", async () => {
    const registry = new MemoryRegistry();
    for (let i = 0; i < 6; i++)
      await putRecord(registry, {
        runId: `r${i}`,
        startedAt: `2026-11-2${i}T02:00:00.000Z`,
        even: i % 2 === 0,
      });
    const even = (r: unknown) => (r as { even: boolean }).even;
    expect((await listRecords(registry, { where: even })).map((e) => e.key)).toEqual(
      ["r4", "r2", "r0"].map((id, i) => `runs/2026-11-2${4 - 2 * i}T02:00:00.000Z-${id}.json`),
    );
    expect((await listRecords(registry, { where: even, limit: 2 })).map((e) => e.key)).toHaveLength(2);
    // r5, r4, r3 read: one of them kept.
    expect((await listRecords(registry, { where: even, scan: 3 })).map((e) => e.key)).toEqual([
      "runs/2026-11-24T02:00:00.000Z-r4.json",
    ]);
  });

  it("never overwrites a record", async () => {
    const registry = new MemoryRegistry();
    await putRecord(registry, { runId: "r1", startedAt: "2026-11-24T02:00:00.000Z", n: 1 });
    await expect(
      putRecord(registry, { runId: "r1", startedAt: "2026-11-24T02:00:00.000Z", n: 2 }),
    ).rejects.toThrow(RecordExistsError);
    expect((await listRecords(registry))[0]!.record).toMatchObject({ n: 1 });
  });

  it("refuses run ids and times that would make a bad key", () => {
    expect(() => recordKey({ runId: "a/b", startedAt: "2026-11-24T02:00:00Z" })).toThrow(/runId "a\/b"/);
    expect(() => recordKey({ runId: "ok", startedAt: "yesterday" })).toThrow(/startedAt "yesterday"/);
  });

  it("a record that is not JSON fails the listing, naming it", async () => {
    const registry = new MemoryRegistry();
    await registry.put("runs/2026-11-24T02:00:00.000Z-x.json", new TextEncoder().encode("{"));
    await expect(listRecords(registry)).rejects.toThrow(HistoryError);
    await expect(listRecords(registry)).rejects.toThrow("runs/2026-11-24T02:00:00.000Z-x.json in memory:");
  });

  it("recordPrefixes reads published and champion prefixes, loosely", () => {
    expect(recordPrefixes({ published: { prefix: "models/a" }, champion: { prefix: "models/b/" } })).toEqual([
      "models/a/",
      "models/b/",
    ]);
    expect(recordPrefixes({ published: null, champion: { prefix: 3 } })).toEqual([]);
    expect(recordPrefixes("text")).toEqual([]);
  });
});

describe("gc", () => {
  it("keeps what the pointers and the newest `keep` records that name a model name, deletes the rest, never records", async () => {
    const registry = await withModels(8);
    await registry.setPointer("models/current", prefix(1));
    // A hand-set pointer without its trailing slash still protects its directory.
    await registry.setPointer("models/challenger", prefix(2).slice(0, -1));
    // Oldest to newest: r0 names 3, r1 names 4 and 5, r2 names 6, r3 published nothing. `keep`
    // counts the records that name a model: 2 keeps r2's and r1's.
    await putRecord(registry, {
      runId: "r0",
      startedAt: "2026-11-20T02:00:00Z",
      published: { prefix: prefix(3) },
    });
    await putRecord(registry, {
      runId: "r1",
      startedAt: "2026-11-21T02:00:00Z",
      published: { prefix: prefix(4) },
      champion: { prefix: prefix(5) },
    });
    await putRecord(registry, {
      runId: "r2",
      startedAt: "2026-11-22T02:00:00Z",
      champion: { prefix: prefix(6) },
    });
    await putRecord(registry, { runId: "r3", startedAt: "2026-11-23T02:00:00Z" });
    await registry.put(LOCK_KEY, new TextEncoder().encode("{}"));
    await registry.put("models/hand-made/model.onnx", new Uint8Array([0]));
    const recordsBefore = await registry.list("runs/");

    const dry = await gc(registry, { keep: 2, dryRun: true });
    expect(dry.prefixes).toEqual([prefix(3), prefix(7), prefix(8)]);
    expect(await registry.list(prefix(7))).toHaveLength(2);

    const result = await gc(registry, { keep: 2, protect: [prefix(8)] });
    expect(result.prefixes).toEqual([prefix(3), prefix(7)]);
    // manifest.json first within each directory.
    expect(result.keys).toEqual([
      `${prefix(3)}manifest.json`,
      `${prefix(3)}model.onnx`,
      `${prefix(7)}manifest.json`,
      `${prefix(7)}model.onnx`,
    ]);
    expect(result.kept).toEqual([1, 2, 4, 5, 6, 8].map(prefix));
    for (const n of [1, 2, 4, 5, 6, 8]) expect(await registry.list(prefix(n))).toHaveLength(2);
    expect(await registry.list("runs/")).toEqual(recordsBefore);
    expect(await registry.get(LOCK_KEY)).toBeDefined();
    expect(await registry.get("models/hand-made/model.onnx")).toBeDefined();

    // keep 0: only the pointers (and protect) hold.
    const tight = await gc(registry, { keep: 0 });
    expect(tight.prefixes).toEqual([4, 5, 6, 8].map(prefix));
    expect((await registry.list("models/")).map((k) => k.split("/")[1])).toEqual([
      prefix(1).split("/")[1],
      prefix(1).split("/")[1],
      prefix(2).split("/")[1],
      prefix(2).split("/")[1],
      "hand-made",
    ]);
    expect(await registry.list("runs/")).toEqual(recordsBefore);
  });

  it("counts `keep` over the records that name a model: a scheduler's not-ready retries do not use it up", async () => {
    const registry = await withModels(3);
    await registry.setPointer("models/current", prefix(3));
    await putRecord(registry, {
      runId: "r1",
      startedAt: "2026-11-20T02:00:00Z",
      published: { prefix: prefix(1) },
    });
    await putRecord(registry, {
      runId: "r2",
      startedAt: "2026-11-21T02:00:00Z",
      published: { prefix: prefix(2) },
    });
    for (let i = 0; i < 5; i++)
      await putRecord(registry, {
        runId: `late${i}`,
        startedAt: `2026-11-22T0${i}:00:00Z`,
        outcome: "not-ready",
      });
    const result = await gc(registry, { keep: 1, dryRun: true });
    expect(result.prefixes).toEqual([prefix(1)]);
    expect(result.kept).toEqual([prefix(2), prefix(3)]);
  });

  it("never deletes what a pointer or the last N records name, over random histories", async () => {
    for (let trial = 0; trial < 25; trial++) {
      // A small seeded generator: the same 25 histories every run.
      let seed = trial + 1;
      const random = (n: number) => {
        seed = (seed * 1103515245 + 12345) % 2 ** 31;
        return seed % n;
      };
      const models = 2 + random(10);
      const registry = await withModels(models);
      const pick = () => prefix(1 + random(models));
      if (random(3) > 0) await registry.setPointer("models/current", pick());
      if (random(2) > 0) await registry.setPointer("models/challenger", pick());
      const runs = random(8);
      const named: string[][] = [];
      for (let r = 0; r < runs; r++) {
        const record: {
          runId: string;
          startedAt: string;
          published?: { prefix: string };
          champion?: { prefix: string };
        } = {
          runId: `r${r}`,
          startedAt: new Date(Date.UTC(2026, 10, 1 + r)).toISOString(),
        };
        if (random(2)) record.published = { prefix: pick() };
        if (random(2)) record.champion = { prefix: pick() };
        named.push([record.published?.prefix, record.champion?.prefix].filter((p): p is string => !!p));
        await putRecord(registry, record);
      }
      const keep = random(runs + 2);
      const pointers = [
        await registry.getPointer("models/current"),
        await registry.getPointer("models/challenger"),
      ];
      const mustKeep = new Set([
        ...pointers.filter((p): p is string => p !== undefined),
        ...named.slice(Math.max(0, runs - keep)).flat(),
      ]);
      const result = await gc(registry, { keep });
      for (const p of mustKeep) {
        expect(result.prefixes).not.toContain(p);
        expect(await registry.list(p)).toHaveLength(2);
      }
      for (let i = 1; i <= models; i++)
        if (!mustKeep.has(prefix(i))) expect(await registry.list(prefix(i))).toEqual([]);
      expect(await registry.list("runs/")).toHaveLength(runs);
    }
  });

  it("keeps each pointer's rollback target, however many records ago it was published", async () => {
    const registry = await withModels(6);
    await registry.setPointer("models/current", prefix(2));
    await registry.setPointer("models/challenger", prefix(4));
    const day = (n: number) => new Date(Date.UTC(2026, 10, 1 + n)).toISOString();
    // Oldest to newest: 1 then 2 published to current, 4 to the challenger over 3; a record
    // rolled back (it never stood) names 5; then refused runs name only the champion.
    await putRecord(registry, {
      runId: "r0",
      startedAt: day(0),
      outcome: "published",
      published: { pointer: "models/current", prefix: prefix(1) },
    });
    await putRecord(registry, {
      runId: "r1",
      startedAt: day(1),
      outcome: "published",
      published: { pointer: "models/current", prefix: prefix(2), previous: prefix(1) },
    });
    await putRecord(registry, {
      runId: "r2",
      startedAt: day(2),
      outcome: "published",
      published: { pointer: "models/challenger", prefix: prefix(4), previous: prefix(3) },
    });
    await putRecord(registry, {
      runId: "r3",
      startedAt: day(3),
      outcome: "rolled-back",
      published: { pointer: "models/current", prefix: prefix(2), previous: prefix(5) },
    });
    for (let r = 4; r < 7; r++)
      await putRecord(registry, { runId: `r${r}`, startedAt: day(r), champion: { prefix: prefix(2) } });

    const result = await gc(registry, { keep: 3 });
    // `pipeline rollback` would go from 2 to 1 and from 4 to 3: both stay.
    expect(result.kept).toEqual([1, 2, 3, 4].map(prefix));
    expect(result.prefixes).toEqual([5, 6].map(prefix));
  });

  it("checks keep", async () => {
    await expect(gc(new MemoryRegistry(), { keep: -1 })).rejects.toThrow(RangeError);
    await expect(gc(new MemoryRegistry(), { keep: 1.5 })).rejects.toThrow(RangeError);
  });
});
