/**
 * A run over a day that is not complete (pipeline.json data.complete): it ends "not-ready" with
 * exit status 3 before it takes the lock, reads the champion or any data, and says what is missing;
 * once the day is complete it trains. In-memory registry, a tiny network and no infra check, a
 * few seconds a run; the s3:// case against a tiny S3 on 127.0.0.1; the CLI's exit status once
 * through `bin/mtrank.js` in local mode.
 */
import { spawnSync } from "node:child_process";
import { cp, mkdir, rm, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PointerName } from "../../trainer/pipeline/contracts.ts";
import type { RunRecord } from "../../trainer/pipeline/record.ts";
import { listRecords } from "../../trainer/pipeline/registry/history.ts";
import { NOT_READY, runPipeline } from "../../trainer/pipeline/run.ts";
import { type SimRow, toCsv } from "../../trainer/simulate/simulator.ts";
import { bucketHandler, type FakeObject, type FakeS3, fakeS3 } from "./fake-s3.ts";
import { MemoryRegistry } from "./memory-registry.ts";
import { smallConfig, smallDays } from "./small-days.ts";

let dir: string;
let rows: SimRow[];
const log = () => {};
const HOUR = 3_600_000;
const SUFFIX = "; no data file was read and nothing published (run again once the export has finished)";

function config(source: string, complete: Record<string, unknown>) {
  return smallConfig(dir, source, {}, { complete });
}

/** A day folder under `dir` holding `n` parts of 1,000 rows, written `ageMs` ago (default: now). */
async function day(name: string, n: number, ageMs?: number): Promise<string> {
  const folder = join(dir, name);
  await mkdir(folder, { recursive: true });
  for (let i = 0; i < n; i++) {
    const file = join(folder, `part-0${i}.csv`);
    await writeFile(file, toCsv(rows.slice(i * 1000, (i + 1) * 1000)));
    if (ageMs !== undefined) await age(file, ageMs);
  }
  return folder;
}

async function age(file: string, ageMs: number): Promise<void> {
  const at = (Date.now() - ageMs) / 1000;
  await utimes(file, at, at);
}

const stepsOf = (r: { record: RunRecord }) => r.record.steps.map((s) => s.step);

beforeAll(async () => {
  const days = await smallDays("mtrank-pipeline-complete-");
  dir = days.dir;
  rows = days.rows;
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("a run over a day that is not complete", { timeout: 120_000 }, () => {
  it("a folder without its marker: not ready (exit 3) before the lock, a record says why; with the marker it trains and publishes", async () => {
    const folder = await day("marker", 3);
    const reg = new MemoryRegistry();
    const lines: string[] = [];
    const r = await runPipeline(config("marker", { marker: true }), {
      registry: reg,
      log: (l) => lines.push(l),
    });
    const reason = `data.source ${folder} is not complete: no _SUCCESS in ${folder} (3 data files)${SUFFIX}`;
    expect(r.record.outcome).toBe("not-ready");
    expect(r.exitCode).toBe(3);
    expect(NOT_READY).toBe(3);
    expect(r.record.exitCode).toBe(3);
    expect(r.record.reason).toBe(reason);
    expect(r.record.complete).toMatchObject({
      ready: false,
      marker: "_SUCCESS",
      files: 3,
      lacking: [{ folder, files: 3 }],
    });
    // Nothing but the check: no lock, no champion, no data read, nothing published.
    expect(stepsOf(r)).toEqual(["complete"]);
    expect(r.record.data).toBeUndefined();
    expect(await reg.getPointer("models/current")).toBeUndefined();
    expect([...reg.objects.keys()].filter((k) => !k.startsWith("runs/"))).toEqual([]);
    // The record, in the registry as for every run, and the log's lines.
    const stored = await listRecords(reg);
    expect(stored.map((e) => (e.record as RunRecord).outcome)).toEqual(["not-ready"]);
    expect(lines.find((l) => l.startsWith("complete"))).toMatch(
      /^complete +\d+\.\d s {2}data\.source .* is not complete: no _SUCCESS in /,
    );
    expect(lines.at(-1)).toBe(`not-ready: ${reason}`);

    await writeFile(join(folder, "_SUCCESS"), "");
    const ok = await runPipeline(config("marker", { marker: true }), { registry: reg, log });
    expect(ok.record.outcome, ok.record.reason).toBe("published");
    expect(ok.exitCode).toBe(0);
    expect(stepsOf(ok).slice(0, 4)).toEqual(["complete", "lock", "champion", "data"]);
    expect(ok.record.complete).toMatchObject({ ready: true, files: 3 });
    expect(ok.record.steps[0]!.detail).toBe(`${folder}: _SUCCESS for every data file, 3 data files`);
    expect(ok.record.data!.files).toHaveLength(3);
  });

  it("a glob across two day folders, one without its marker: not ready, naming that folder", async () => {
    const a = await day("glob/2026-12-06", 1);
    const b = await day("glob/2026-12-07", 2);
    await writeFile(join(a, "_SUCCESS"), "");
    const source = join(dir, "glob", "2026-12-0[67]", "*.csv");
    const r = await runPipeline(config("glob/2026-12-0[67]/*.csv", { marker: true }), {
      registry: new MemoryRegistry(),
      log,
    });
    expect(r.record.outcome).toBe("not-ready");
    expect(r.exitCode).toBe(3);
    expect(r.record.reason).toBe(
      `data.source ${source} is not complete: no _SUCCESS in ${b} (2 data files)${SUFFIX}`,
    );
    expect(r.record.complete!.lacking).toEqual([{ folder: b, files: 2 }]);
  });

  it("a file touched now, within the quiet period: not ready, naming it and its age; a dry run says so too; older, the run proceeds", async () => {
    const folder = await day("quiet", 2, 2 * HOUR);
    await writeFile(join(folder, "part-02.csv"), toCsv(rows.slice(2000, 3000)));
    const complete = { marker: "_DONE", quietMinutes: 15 };
    await writeFile(join(folder, "_DONE"), "");
    const reg = new MemoryRegistry();
    const r = await runPipeline(config("quiet", complete), { registry: reg, log });
    expect(r.record.outcome).toBe("not-ready");
    expect(r.exitCode).toBe(3);
    expect(r.record.reason).toMatch(
      /^data\.source \S+quiet is not complete: modified within the last 15 min: part-02\.csv [0-9] s ago \(data\.complete\.quietMinutes 15: quiet in 1[45] min( \d+ s)? at the earliest\); no data file was read/,
    );
    expect(r.record.complete!.recent!.map((f) => f.file)).toEqual([join(folder, "part-02.csv")]);
    expect(stepsOf(r)).toEqual(["complete"]);

    // --dry-run reports it with the same exit status.
    const dry = await runPipeline(config("quiet", complete), { registry: reg, log, dryRun: true });
    expect(dry.record.outcome).toBe("dry-run");
    expect(dry.exitCode).toBe(3);
    expect(dry.record.reason).toMatch(
      /^dry run: data\.source \S+ is not complete: modified within the last 15 min: part-02\.csv /,
    );

    await age(join(folder, "part-02.csv"), 20 * 60_000);
    const ok = await runPipeline(config("quiet", complete), { registry: reg, log, dryRun: true });
    expect(ok.record.outcome, ok.record.reason).toBe("dry-run");
    expect(ok.exitCode).toBe(0);
    expect(stepsOf(ok)).toContain("train");
    expect(ok.record.steps[0]!.detail).toBe(
      `${folder}: _DONE for every data file, 3 data files, the newest modified 20 min ago (quiet period 15 min)`,
    );
  });

  it("a file that lands after the check, while the champion downloads: the data step finds it and reads nothing", async () => {
    const folder = await day("late", 2, 2 * HOUR);
    await writeFile(join(folder, "_SUCCESS"), "");
    // The export writes one more part while the run reads the pointers (after its check passed).
    class LateWriter extends MemoryRegistry {
      override async getPointer(name: PointerName): Promise<string | undefined> {
        await writeFile(join(folder, "part-02.csv"), toCsv(rows.slice(2000, 3000)));
        return super.getPointer(name);
      }
    }
    const r = await runPipeline(config("late", { marker: true, quietMinutes: 10 }), {
      registry: new LateWriter(),
      log,
    });
    expect(r.record.outcome).toBe("not-ready");
    expect(r.exitCode).toBe(3);
    expect(r.record.reason).toMatch(
      /is not complete: modified within the last 10 min: part-02\.csv \d s ago/,
    );
    expect(stepsOf(r)).toEqual(["complete", "lock", "champion", "data"]);
    expect(r.record.steps[0]!.detail).toMatch(/: _SUCCESS for every data file, 2 data files/);
    expect(r.record.data).toBeUndefined();
  });

  it("without data.complete a run reads the folder as it finds it, marker or not", async () => {
    await day("plain", 1);
    const r = await runPipeline(smallConfig(dir, "plain"), {
      registry: new MemoryRegistry(),
      log,
      dryRun: true,
    });
    expect(r.record.outcome, r.record.reason).toBe("dry-run");
    expect(r.exitCode).toBe(0);
    expect(stepsOf(r)[0]).toBe("champion");
    expect(r.record.complete).toBeUndefined();
  });
});

describe("an s3:// day", { timeout: 120_000 }, () => {
  const objects = new Map<string, FakeObject>();
  const gets: string[] = [];
  let s3: FakeS3 | undefined;
  let client: S3Client;

  beforeAll(async () => {
    const modified = new Date(Date.now() - 2 * HOUR);
    for (const d of ["day=1", "day=2"])
      for (const i of [0, 1])
        objects.set(`logs/${d}/part-0${i}.csv`, {
          body: Buffer.from(toCsv(rows.slice(i * 1000, (i + 1) * 1000))),
          modified,
        });
    objects.set("logs/day=2/_SUCCESS", { body: Buffer.alloc(0), modified });
    s3 = await fakeS3(bucketHandler("logs-bucket", objects, gets));
    client = s3.client;
  });

  afterAll(async () => {
    await s3?.close();
  });

  it("without its _SUCCESS: not ready, nothing downloaded; with it: downloaded and trained on", async () => {
    const complete = { marker: true, quietMinutes: 30 };
    gets.length = 0;
    const r = await runPipeline(config("s3://logs-bucket/logs/day=1/", complete), {
      registry: new MemoryRegistry(),
      log,
      s3: client,
    });
    expect(r.record.outcome).toBe("not-ready");
    expect(r.exitCode).toBe(3);
    expect(r.record.reason).toBe(
      `data.source s3://logs-bucket/logs/day=1/ is not complete: no _SUCCESS in s3://logs-bucket/logs/day=1/ (2 data files)${SUFFIX}`,
    );
    expect(gets).toEqual([]);

    const ok = await runPipeline(config("s3://logs-bucket/logs/day=2/", complete), {
      registry: new MemoryRegistry(),
      log,
      s3: client,
      dryRun: true,
    });
    expect(ok.record.outcome, ok.record.reason).toBe("dry-run");
    expect(ok.exitCode).toBe(0);
    expect(gets.sort()).toEqual(["logs/day=2/part-00.csv", "logs/day=2/part-01.csv"]);
    expect(ok.record.data!.files.map((f) => f.source)).toEqual([
      "s3://logs-bucket/logs/day=2/part-00.csv",
      "s3://logs-bucket/logs/day=2/part-01.csv",
    ]);
  });
});

describe("`mtrank pipeline run` over a day that is not complete", { timeout: 120_000 }, () => {
  it("exits 3 with the reason and the record's page, in local mode", async () => {
    const work = join(dir, "cli");
    await mkdir(work);
    await cp(join(dir, "spec.json"), join(work, "spec.json"));
    await cp(join(dir, "holdout.csv"), join(work, "holdout.csv"));
    await mkdir(join(work, "day"));
    await writeFile(join(work, "day", "part-0.csv"), toCsv(rows.slice(0, 1000)));
    const file = join(work, "pipeline.json");
    await writeFile(
      file,
      JSON.stringify({
        data: { source: "day", spec: "spec.json", complete: { marker: true } },
        evaluation: { holdout: "holdout.csv" },
        gate: { floors: [{ task: "click", metric: "auc", min: 0 }], infra: false },
        registry: { local: { persistTo: "state" } },
      }),
    );
    const cli = spawnSync(process.execPath, ["bin/mtrank.js", "pipeline", "run", "--config", file], {
      encoding: "utf8",
      timeout: 110_000,
    });
    expect(cli.status, cli.stderr).toBe(3);
    expect(cli.stdout).toContain(
      `not-ready: data.source ${join(work, "day")} is not complete: no _SUCCESS in ${join(work, "day")} (1 data file)${SUFFIX}`,
    );
    expect(cli.stdout).toMatch(/record: \S+record\.html/);
  });
});
