/**
 * What keeps a run from publishing when it should not (trainer/pipeline/run.ts): a run that lost
 * its lock or whose pointer moved under it does not flip. Runs against an in-memory registry with
 * a tiny network and no infra check, a few seconds each.
 */
import { mkdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PointerName } from "../../trainer/pipeline/contracts.ts";
import { rollback } from "../../trainer/pipeline/ops.ts";
import type { RunRecord } from "../../trainer/pipeline/record.ts";
import { listRecords } from "../../trainer/pipeline/registry/history.ts";
import { acquireLock, LOCK_KEY, removeLock } from "../../trainer/pipeline/registry/lock.ts";
import { runPipeline } from "../../trainer/pipeline/run.ts";
import { toCsv } from "../../trainer/simulate/simulator.ts";
import { MemoryRegistry } from "./memory-registry.ts";
import { smallConfig, smallDays } from "./small-days.ts";

let dir: string;
const lines: string[] = [];
const log = (line: string) => lines.push(line);

/** A config over the temporary folder; `patch` replaces top-level fields. */
function config(source: string, patch: Record<string, unknown> = {}) {
  return smallConfig(dir, source, patch);
}

beforeAll(async () => {
  const days = await smallDays("mtrank-pipeline-guards-");
  dir = days.dir;
  const rows = days.rows;
  // A third day: a run after day1 and day2 were published needs new data (the same files again
  // are refused as a day delivered twice).
  await mkdir(join(dir, "day3"));
  await writeFile(join(dir, "day3", "part-0.csv"), toCsv(rows.slice(9000, 12000)));
  // The holdout under another name, and a day that holds some of its rows (as JSONL: the same
  // rows in another format), many or few.
  await writeFile(join(dir, "holdout-copy.csv"), toCsv(rows.slice(6000, 9000)));
  await symlink(join(dir, "holdout.csv"), join(dir, "holdout-link.csv"));
  const jsonl = (part: typeof rows) => `${part.map((r) => JSON.stringify(r)).join("\n")}\n`;
  for (const [name, copied] of [
    ["leaky", 500],
    ["speck", 10],
  ] as const) {
    await mkdir(join(dir, name));
    await writeFile(join(dir, name, "part-0.csv"), toCsv(rows.slice(3000, 6000)));
    await writeFile(join(dir, name, "part-1.jsonl"), jsonl(rows.slice(6000, 6000 + copied)));
  }
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** A registry where day1 then day2 were published: [first, second] prefixes; current names second. */
async function twoPublished(): Promise<{ reg: MemoryRegistry; first: string; second: string }> {
  const reg = new MemoryRegistry();
  const r1 = await runPipeline(config("day1"), { registry: reg, log });
  expect(r1.record.outcome, r1.record.reason).toBe("published");
  const r2 = await runPipeline(config("day2"), { registry: reg, log });
  expect(r2.record.outcome, r2.record.reason).toBe("published");
  return { reg, first: r1.record.published!.prefix, second: r2.record.published!.prefix };
}

describe("the flip re-checks what the run was judged against", { timeout: 120_000 }, () => {
  it("a run that lost its lock mid-run does not flip: an operator's unlock and rollback stand", async () => {
    const { reg, first, second } = await twoPublished();
    let operator: Promise<unknown> | undefined;
    const r = await runPipeline(config("day3"), {
      registry: reg,
      log: (line) => {
        log(line);
        // The champion (second) is downloaded; the operator now breaks the lock and rolls back.
        if (line.startsWith("champion") && !operator)
          operator = (async () => {
            await removeLock(reg, { force: true });
            await rollback(reg, { to: first });
          })();
      },
    });
    await operator;
    expect(r.record.champion?.prefix).toBe(second);
    expect(r.record.outcome).toBe("failed");
    expect(r.exitCode).toBe(1);
    expect(r.record.reason).toMatch(/locks\/pipeline/);
    expect(r.record.reason).toMatch(/nothing was published/);
    expect(r.record.published).toBeUndefined();
    expect(await reg.getPointer("models/current")).toBe(first);
    // The operator's lock is gone with the operator; the run left it alone.
    expect(await reg.get(LOCK_KEY)).toBeUndefined();
    const stored = (await listRecords(reg)).map((e) => e.record as RunRecord);
    expect(stored.find((x) => x.runId === r.record.runId)).toMatchObject({ outcome: "failed" });
  });

  it("a pointer moved during the run (the lock still held) is not flipped over", async () => {
    const { reg, first, second } = await twoPublished();
    const r = await runPipeline(config("day3"), {
      registry: reg,
      log: (line) => {
        log(line);
        // A hand edit of the KV pointer, past the lock.
        if (line.startsWith("gate")) reg.pointers.set("models/current", first);
      },
    });
    expect(r.record.champion?.prefix).toBe(second);
    expect(r.record.outcome).toBe("failed");
    expect(r.record.reason).toBe(
      `models/current moved during the run: it named ${second} when the run began (the champion the candidate was judged against) and names ${first} now; nothing was published`,
    );
    expect(r.record.published).toBeUndefined();
    expect(await reg.getPointer("models/current")).toBe(first);
    expect(await reg.get(LOCK_KEY)).toBeUndefined();
  });

  it("a first run does not flip over a pointer someone set meanwhile", async () => {
    const { reg, first } = await twoPublished();
    const fresh = new MemoryRegistry();
    // Copy the first model's objects, as if published by hand while the run trained.
    for (const [key, object] of reg.objects) if (key.startsWith(first)) fresh.objects.set(key, object);
    const r = await runPipeline(config("day1"), {
      registry: fresh,
      log: (line) => {
        log(line);
        if (line.startsWith("gate")) fresh.pointers.set("models/current", first);
      },
    });
    expect(r.record.champion).toBeUndefined();
    expect(r.record.outcome).toBe("failed");
    expect(r.record.reason).toMatch(/^models\/current moved during the run: it was unset when the run began/);
    expect(await fresh.getPointer("models/current")).toBe(first);
  });
});

describe("the day's data may not be the frozen holdout", { timeout: 120_000 }, () => {
  it("a data file that is the holdout file, by link or by content, fails the run before training", async () => {
    // The same path is refused as the config is read (config.test.ts); a link to it or a copy of
    // it only the run, which reads the files, can tell.
    expect(() => config(join(dir, "holdout.csv"))).toThrow(/evaluation.holdout: .* is data.source itself/);
    const reg = new MemoryRegistry();
    for (const source of ["holdout-link.csv", "holdout-copy.csv"]) {
      const r = await runPipeline(config(join(dir, source)), { registry: reg, log });
      expect(r.record.outcome).toBe("failed");
      expect(r.record.reason).toBe(
        `the day's data file ${join(dir, source)} ${source === "holdout-link.csv" ? "is" : "has the same sha256 as"} the frozen holdout (evaluation.holdout ${join(dir, "holdout.csv")}): a candidate trained on it would be judged on rows it has seen; keep the holdout out of data.source`,
      );
      expect(r.record.steps.map((s) => s.step)).not.toContain("train");
      expect(await reg.getPointer("models/current")).toBeUndefined();
    }
  });

  it("a day holding more than 1% of the holdout's rows fails, naming the files and the share", async () => {
    const reg = new MemoryRegistry();
    const r = await runPipeline(config("leaky"), { registry: reg, log });
    expect(r.record.outcome).toBe("failed");
    expect(r.record.reason).toBe(
      `16.7% of the frozen holdout's rows (500 of 3000 in ${join(dir, "holdout.csv")}) are also in the day's data (500 rows of ${join(dir, "leaky", "part-0.csv")}, ${join(dir, "leaky", "part-1.jsonl")}), over the 1% allowed: a candidate trained on them would be judged on rows it has seen; take them out of data.source or cut a new holdout`,
    );
    expect(r.record.data!.holdoutOverlap).toEqual({
      holdoutRows: 3000,
      holdoutRowsInData: 500,
      share: 500 / 3000,
      dataRows: 500,
    });
    expect(r.record.steps.map((s) => s.step)).not.toContain("train");
    expect(await reg.getPointer("models/current")).toBeUndefined();
  });

  it("a few shared rows (under 1%) are allowed and recorded", async () => {
    const r = await runPipeline(config("speck"), { registry: new MemoryRegistry(), log, dryRun: true });
    expect(r.record.outcome, r.record.reason).toBe("dry-run");
    expect(r.record.data!.holdoutOverlap).toEqual({
      holdoutRows: 3000,
      holdoutRowsInData: 10,
      share: 10 / 3000,
      dataRows: 10,
    });
  });
});

describe("the newest slice is not trained on", { timeout: 120_000 }, () => {
  it("its rows are held out of the day's training rows", async () => {
    const r = await runPipeline(
      config("day1", { evaluation: { holdout: "holdout.csv", newest: { rows: 500 } } }),
      {
        registry: new MemoryRegistry(),
        log,
        dryRun: true,
      },
    );
    expect(r.record.outcome, r.record.reason).toBe("dry-run");
    const t = r.record.training!;
    // Averaged folds train on every row they are given; a split trains on trainRows only.
    const trained = t.trainRows === t.validRows ? t.trainRows : t.trainRows + t.validRows;
    expect(trained).toBe(2500);
    expect(r.record.metrics!.newest!.description).toBe(
      "the last 500 rows of 3000 in the new data, in file order, held out of training",
    );
    const runDir = dirname(r.files.json);
    const newest = (await readFile(join(runDir, "data", "newest.jsonl"), "utf8")).trim().split("\n");
    const train = new Set((await readFile(join(runDir, "data", "train.jsonl"), "utf8")).trim().split("\n"));
    expect(newest).toHaveLength(500);
    expect(train.size).toBe(2500);
    expect(newest.filter((line) => train.has(line))).toEqual([]);
  });

  it("a slice over half the day fails the run, saying what to change", async () => {
    const r = await runPipeline(
      config("day1", { evaluation: { holdout: "holdout.csv", newest: { rows: 2000 } } }),
      { registry: new MemoryRegistry(), log, dryRun: true },
    );
    expect(r.record.outcome).toBe("failed");
    expect(r.record.reason).toBe(
      "evaluation.newest: the newest slice would hold 2000 of the day's 3000 rows, which the candidate does not train on; over half the day is left out of training: ask for fewer rows or hours",
    );
    expect(r.record.steps.map((s) => s.step)).not.toContain("train");
  });
});

/** A registry whose next pointer write, once armed, lands and then reports a failure (a timeout). */
class LandThenFailRegistry extends MemoryRegistry {
  armed = false;
  override async setPointer(name: PointerName, prefix: string): Promise<void> {
    await super.setPointer(name, prefix);
    if (this.armed) {
      this.armed = false;
      throw new Error(`KV PUT ${name} failed: TimeoutError`);
    }
  }
}

describe("a pointer write that lands and then fails", { timeout: 120_000 }, () => {
  it("is undone like any failure after the flip: the champion serves, the record says so", async () => {
    const reg = new LandThenFailRegistry();
    const r1 = await runPipeline(config("day1"), { registry: reg, log });
    const champion = r1.record.published!.prefix;
    const r = await runPipeline(config("day2"), {
      registry: reg,
      log: (line) => {
        log(line);
        if (line.startsWith("gate")) reg.armed = true;
      },
    });
    expect(r.record.outcome).toBe("rolled-back");
    expect(r.exitCode).toBe(1);
    expect(r.record.reason).toBe("KV PUT models/current failed: TimeoutError");
    expect(r.record.published).toMatchObject({ pointer: "models/current", previous: champion });
    expect(r.record.rollback).toEqual({
      pointer: "models/current",
      from: r.record.published!.prefix,
      to: champion,
      why: "KV PUT models/current failed: TimeoutError",
    });
    expect(await reg.getPointer("models/current")).toBe(champion);
  });

  it("on a first run, the pointer it set is deleted again", async () => {
    const reg = new LandThenFailRegistry();
    const r = await runPipeline(config("day1"), {
      registry: reg,
      log: (line) => {
        log(line);
        if (line.startsWith("gate")) reg.armed = true;
      },
    });
    expect(r.record.outcome).toBe("rolled-back");
    expect(r.record.rollback).toMatchObject({ to: "(unset)" });
    expect(await reg.getPointer("models/current")).toBeUndefined();
  });
});

describe("the config's warnings", () => {
  it("are logged and recorded by every run", async () => {
    const reg = new MemoryRegistry();
    // A held lock ends the run at once: what comes before it is what is checked here.
    const release = await acquireLock(reg, { owner: "another run", ttlMs: 60_000 });
    const seen: string[] = [];
    const r = await runPipeline(config("day1"), { registry: reg, log: (line) => seen.push(line) });
    const expected = [
      "gate.changes.0.maxDrop: 1 is the whole range of auc ([0, 1]): the rule passes any candidate",
      "gate.infra: false: the candidate is published without loading it as the worker does (meant only to debug the gate)",
      "smoke: none: nothing checks that the worker serves the new model after the flip",
    ];
    expect(r.record.warnings).toEqual(expected);
    expect(seen.filter((l) => l.startsWith("config"))).toEqual(
      expected.map((w) => `config    warning: ${w}`),
    );
    expect(((await listRecords(reg))[0]!.record as RunRecord).warnings).toEqual(expected);
    await release();
  });
});
