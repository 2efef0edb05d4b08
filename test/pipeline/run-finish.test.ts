/**
 * How a run ends (trainer/pipeline/run.ts): whatever fails or interrupts it, the record is stored
 * and the lock released. Runs against an in-memory registry with a tiny network and no infra
 * check, a few seconds each.
 */
import { readdirSync, rmSync, writeFileSync } from "node:fs";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunRecord } from "../../trainer/pipeline/record.ts";
import { listRecords } from "../../trainer/pipeline/registry/history.ts";
import { LOCK_KEY } from "../../trainer/pipeline/registry/lock.ts";
import { runPipeline } from "../../trainer/pipeline/run.ts";
import { toCsv } from "../../trainer/simulate/simulator.ts";
import { MemoryRegistry } from "./memory-registry.ts";
import { smallConfig, smallDays } from "./small-days.ts";

let dir: string;

/** A config over the temporary folder; `patch` replaces top-level fields. */
function config(source: string, patch: Record<string, unknown> = {}) {
  return smallConfig(dir, source, patch);
}

beforeAll(async () => {
  const days = await smallDays("mtrank-pipeline-finish-");
  dir = days.dir;
  const rows = days.rows;
  // day2 with every dwell 15 % longer: its log1p mean moves by about 0.14 in label units, about
  // 4 % of itself.
  await mkdir(join(dir, "dwell-up"));
  const longer = rows
    .slice(3000, 6000)
    .map((r) => (typeof r.dwell_s === "number" ? { ...r, dwell_s: r.dwell_s * 1.15 } : r));
  await writeFile(join(dir, "dwell-up", "part-0.csv"), toCsv(longer));
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function stored(reg: MemoryRegistry): Promise<RunRecord[]> {
  return (await listRecords(reg)).map((e) => e.record as RunRecord);
}

describe("a local record that cannot be written", { timeout: 120_000 }, () => {
  it("still stores the registry's record and releases the lock; the run resolves", async () => {
    const reg = new MemoryRegistry();
    const workDir = join(dir, "work-unwritable");
    const seen: string[] = [];
    const r = await runPipeline(config("day1", { workDir }), {
      registry: reg,
      log: (line) => {
        seen.push(line);
        // The run's folder becomes a file: nothing can be written under it any more (as on a
        // full disk or a removed folder).
        if (line.startsWith("lock")) {
          const runs = join(workDir, "runs");
          const [folder] = readdirSync(runs);
          rmSync(join(runs, folder!), { recursive: true, force: true });
          writeFileSync(join(runs, folder!), "");
        }
      },
    });
    expect(r.record.outcome).toBe("failed");
    expect(r.exitCode).toBe(1);
    expect(await reg.get(LOCK_KEY)).toBeUndefined();
    expect((await stored(reg)).map((x) => x.runId)).toEqual([r.record.runId]);
    const failed = seen.filter((l) => l.startsWith("record    failed to write"));
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatch(/record\.json: /);
    expect(seen).toContain(
      `record    runs/${r.record.startedAt}-${r.record.runId}.json (not written locally)`,
    );
  });
});

/** A worker stand-in that never answers: a smoke test against it waits out its deadline. */
async function silentWorker(): Promise<{ url: string; close: () => Promise<void> }> {
  const server: Server = createServer(() => {});
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe("a signal after the flip", { timeout: 60_000 }, () => {
  it("ends the smoke test at once and puts the pointer back; the record is stored, the lock released", async () => {
    const worker = await silentWorker();
    try {
      const reg = new MemoryRegistry();
      const r1 = await runPipeline(config("day1"), { registry: reg, log: () => {} });
      const champion = r1.record.published!.prefix;
      const stop = new AbortController();
      // A two-minute smoke test: the test's own timeout ends long before it would.
      const withSmoke = config("day2", { smoke: { url: worker.url, timeoutS: 120, pollS: 1 } });
      const t0 = performance.now();
      const r = await runPipeline(withSmoke, {
        registry: reg,
        log: (line) => {
          // The publish line comes once the pointer moved: a cancelled CI job's SIGINT then.
          if (line.startsWith("publish")) setTimeout(() => stop.abort("SIGINT"), 300);
        },
        signal: stop.signal,
      });
      expect((performance.now() - t0) / 1000).toBeLessThan(30);
      expect(r.record.outcome).toBe("rolled-back");
      expect(r.exitCode).toBe(1);
      expect(r.record.reason).toMatch(/^smoke test: interrupted \(SIGINT\) after \d+\.\d s: /);
      expect(r.record.smoke).toMatchObject({ passed: false });
      expect(r.record.published).toMatchObject({ pointer: "models/current", previous: champion });
      expect(r.record.rollback).toMatchObject({ to: champion, from: r.record.published!.prefix });
      expect(await reg.getPointer("models/current")).toBe(champion);
      expect(await reg.get(LOCK_KEY)).toBeUndefined();
      expect((await stored(reg)).find((x) => x.runId === r.record.runId)).toMatchObject({
        outcome: "rolled-back",
      });
    } finally {
      await worker.close();
    }
  });

  it("a signal while the model uploads stops the run before the flip", async () => {
    const stop = new AbortController();
    /** Aborts when the candidate's manifest.json (the upload's last object) is stored. */
    class SignalOnUpload extends MemoryRegistry {
      override async put(key: string, bytes: Uint8Array, options?: { ifAbsent?: boolean }): Promise<boolean> {
        const done = await super.put(key, bytes, options);
        if (/^models\/[0-9a-f]{64}\/manifest\.json$/.test(key)) stop.abort("SIGTERM");
        return done;
      }
    }
    const reg = new SignalOnUpload();
    const r = await runPipeline(config("day1"), { registry: reg, log: () => {}, signal: stop.signal });
    expect(r.record.outcome).toBe("failed");
    expect(r.record.reason).toBe("interrupted (SIGTERM) before the flip; nothing was published");
    expect(r.record.published).toBeUndefined();
    expect(await reg.getPointer("models/current")).toBeUndefined();
    expect(await reg.get(LOCK_KEY)).toBeUndefined();
  });
});

describe("drift on a regression label", { timeout: 120_000 }, () => {
  it("is judged relative to the champion's mean, not in label units", async () => {
    const reg = new MemoryRegistry();
    const r1 = await runPipeline(config("day1"), { registry: reg, log: () => {} });
    expect(r1.record.outcome, r1.record.reason).toBe("published");
    // The default `rate` thresholds, meant for a click rate's absolute change.
    const drift = {
      warn: { psi: 2, js: 1, unseen: 1, rate: 0.02 },
      stop: { psi: 5, js: 1, unseen: 1, rate: 0.1 },
    };
    const r = await runPipeline(config("dwell-up", { drift }), {
      registry: reg,
      log: () => {},
      dryRun: true,
    });
    const dwell = r.record.drift!.findings.find((f) => f.subject === "label:dwell")!;
    expect(dwell.value).toBeGreaterThan(0.02);
    expect(dwell.value).toBeLessThan(0.1);
    expect(dwell.level).toBe("warn");
    expect(r.record.outcome, r.record.reason).toBe("dry-run");
  });
});

describe("pruning run folders", { timeout: 120_000 }, () => {
  it("leaves the folder of a run in progress, however many runs were refused at its lock", async () => {
    const workDir = join(dir, "work-prune");
    const refused: RunRecord[] = [];
    let folders: string[] = [];
    /** As the run holding the lock uploads its candidate, five more runs are tried. */
    class Busy extends MemoryRegistry {
      armed = true;
      override async put(key: string, bytes: Uint8Array, options?: { ifAbsent?: boolean }) {
        if (this.armed && key.startsWith("models/")) {
          this.armed = false;
          for (let i = 0; i < 5; i++) {
            const r = await runPipeline(config("day1", { workDir }), { registry: this, log: () => {} });
            refused.push(r.record);
          }
          folders = readdirSync(join(workDir, "runs"));
        }
        return super.put(key, bytes, options);
      }
    }
    const reg = new Busy();
    const r = await runPipeline(config("day1", { workDir }), { registry: reg, log: () => {} });
    const own = r.files.json.split("/").at(-2);
    expect(refused.map((x) => x.reason)).toEqual(refused.map(() => expect.stringMatching(/locks\/pipeline/)));
    expect(folders).toHaveLength(6);
    expect(folders).toContain(own);
    expect(r.record.outcome, r.record.reason).toBe("published");
    // A run never removes its own folder either: its record is there.
    expect(readdirSync(join(workDir, "runs"))).toContain(own);
  });
});

describe("a day delivered again", { timeout: 120_000 }, () => {
  it("is refused before training when an earlier published run had the same files", async () => {
    const reg = new MemoryRegistry();
    const r1 = await runPipeline(config("day1"), { registry: reg, log: () => {} });
    expect(r1.record.outcome, r1.record.reason).toBe("published");
    const first = r1.record.published!.prefix;
    // The same file under another folder: the content is what counts.
    await mkdir(join(dir, "day1-again"), { recursive: true });
    await writeFile(join(dir, "day1-again", "part-0.csv"), await readFile(join(dir, "day1", "part-0.csv")));
    const r = await runPipeline(config("day1-again"), { registry: reg, log: () => {} });
    expect(r.record.outcome).toBe("refused");
    expect(r.exitCode).toBe(2);
    expect(r.record.reason).toBe(
      `the day's data was published before: its file has the sha256 of the data of run ${r1.record.runId} (${r1.record.startedAt}), which published ${first}; training on it again would weigh it twice (--force-publish --reason overrides)`,
    );
    expect(r.record.data!.publishedBefore).toEqual({ runId: r1.record.runId, prefix: first });
    expect(r.record.steps.map((s) => s.step)).not.toContain("train");
    expect(await reg.getPointer("models/current")).toBe(first);
    // Forced, it trains (a dry run here: it would publish).
    const forced = await runPipeline(config("day1-again"), {
      registry: reg,
      log: () => {},
      dryRun: true,
      forcePublish: { reason: "the backfill is meant" },
    });
    expect(forced.record.outcome, forced.record.reason).toBe("dry-run");
    expect(forced.record.steps.map((s) => s.step)).toContain("train");
  });
});
