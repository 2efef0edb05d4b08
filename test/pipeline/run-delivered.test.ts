/**
 * A day of which an earlier published run trained on a part (trainer/pipeline/delivered.ts): the
 * run started before the export finished, and the rest arrived later. Trained on whole again, the
 * earlier part would weigh twice through warm start, so the later run is refused, naming the day,
 * the run and what is new, unless forced. Runs against an in-memory registry with a tiny network
 * and no infra check, a few seconds each; the s3:// naming against records written by hand.
 */
import { createHash } from "node:crypto";
import { appendFile, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  dataBefore,
  downloadedFrom,
  fileName,
  fileRecord,
  HEAD_BYTES,
} from "../../trainer/pipeline/delivered.ts";
import type { DataFileRecord } from "../../trainer/pipeline/record.ts";
import { putRecord } from "../../trainer/pipeline/registry/history.ts";
import { runPipeline } from "../../trainer/pipeline/run.ts";
import { type SimRow, toCsv } from "../../trainer/simulate/simulator.ts";
import { MemoryRegistry } from "./memory-registry.ts";
import { smallConfig, smallDays } from "./small-days.ts";

let dir: string;
let rows: SimRow[];
const log = () => {};

function config(source: string, patch: Record<string, unknown> = {}) {
  return smallConfig(dir, source, patch);
}

beforeAll(async () => {
  const days = await smallDays("mtrank-pipeline-delivered-");
  dir = days.dir;
  rows = days.rows;
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("a day partly trained on before", { timeout: 120_000 }, () => {
  it("3 of its 4 hourly files published, the 4th arrived later: refused, naming the day, the run and the new file", async () => {
    const hours = join(dir, "hours");
    await mkdir(hours);
    const hour = (h: number) => rows.slice(h * 750, (h + 1) * 750);
    for (const h of [0, 1, 2]) await writeFile(join(hours, `part-0${h}.csv`), toCsv(hour(h)));
    const reg = new MemoryRegistry();
    const r1 = await runPipeline(config("hours"), { registry: reg, log });
    expect(r1.record.outcome, r1.record.reason).toBe("published");
    const first = r1.record.published!.prefix;
    expect(r1.record.data!.files.map((f) => f.rows)).toEqual([750, 750, 750]);

    // The late hour lands beside the three the run read.
    await writeFile(join(hours, "part-03.csv"), toCsv(hour(3)));
    const r = await runPipeline(config("hours"), { registry: reg, log });
    expect(r.record.outcome).toBe("refused");
    expect(r.exitCode).toBe(2);
    expect(r.record.reason).toBe(
      `the day's data (${hours}) was partly trained on before: run ${r1.record.runId} (${r1.record.startedAt}), which published ${first}, trained on part-00.csv, part-01.csv, part-02.csv; new since: part-03.csv; training on the whole day again would weigh those rows twice (point data.source at the new data only, or --force-publish --reason overrides)`,
    );
    expect(r.record.data!.partlyPublishedBefore).toEqual(
      [0, 1, 2].map((h) => ({ path: join(hours, `part-0${h}.csv`), runId: r1.record.runId, prefix: first })),
    );
    expect(r.record.data!.publishedBefore).toBeUndefined();
    expect(await readFile(r.files.html, "utf8")).toContain("Partly trained on before: ");
    expect(r.record.steps.map((s) => s.step)).not.toContain("train");
    expect(await reg.getPointer("models/current")).toBe(first);

    // The new file alone is new data: it trains (a dry run here: it would publish).
    const late = await runPipeline(config("hours/part-03.csv"), { registry: reg, log, dryRun: true });
    expect(late.record.outcome, late.record.reason).toBe("dry-run");
    expect(late.record.data!.partlyPublishedBefore).toBeUndefined();
    // Forced, the whole day trains, and the log says past what.
    const seen: string[] = [];
    const forced = await runPipeline(config("hours"), {
      registry: reg,
      log: (line) => seen.push(line),
      dryRun: true,
      forcePublish: { reason: "the late hour is worth the double weight" },
    });
    expect(forced.record.outcome, forced.record.reason).toBe("dry-run");
    expect(forced.record.steps.map((s) => s.step)).toContain("train");
    expect(seen.filter((l) => l.startsWith("forced"))).toEqual([
      `forced    training although the day's data (${hours}) was partly trained on before: run ${r1.record.runId} (${r1.record.startedAt}), which published ${first}, trained on part-00.csv, part-01.csv, part-02.csv; new since: part-03.csv (--force-publish: the late hour is worth the double weight)`,
    ]);
  });

  it("a file that has grown since the run read it: refused, naming how much of it was trained on", async () => {
    const growing = join(dir, "growing");
    await mkdir(growing);
    const file = join(growing, "part-0.csv");
    await writeFile(file, toCsv(rows.slice(0, 2000)));
    const reg = new MemoryRegistry();
    const r1 = await runPipeline(config("growing"), { registry: reg, log });
    expect(r1.record.outcome, r1.record.reason).toBe("published");
    const before = r1.record.data!.files[0]!.bytes;
    // The export goes on appending to the file the run read.
    await appendFile(file, toCsv(rows.slice(2000, 3000)).split("\n").slice(1).join("\n"));
    const r = await runPipeline(config("growing"), { registry: reg, log });
    const after = r.record.data!.files[0]!.bytes;
    expect(after).toBeGreaterThan(before);
    expect(r.record.outcome).toBe("refused");
    expect(r.record.reason).toBe(
      `the day's data (${growing}) was partly trained on before: run ${r1.record.runId} (${r1.record.startedAt}), which published ${r1.record.published!.prefix}, trained on part-0.csv (its first ${before} of ${after} bytes); new since: the rest of part-0.csv; training on the whole day again would weigh those rows twice (point data.source at the new data only, or --force-publish --reason overrides)`,
    );
    expect(r.record.data!.partlyPublishedBefore).toEqual([
      { path: file, runId: r1.record.runId, prefix: r1.record.published!.prefix, bytesBefore: before },
    ]);
    expect(r.record.steps.map((s) => s.step)).not.toContain("train");
  });

  it("files rewritten under the same names with other rows are a new day, a header-only file too", async () => {
    // A source that names one place every night (logs/latest/), its files replaced.
    const latest = join(dir, "latest");
    await mkdir(latest);
    const header = toCsv(rows.slice(0, 1)).split("\n")[0]!;
    await writeFile(join(latest, "part-0.csv"), toCsv(rows.slice(0, 3000)));
    await writeFile(join(latest, "part-1.csv"), `${header}\n`);
    const reg = new MemoryRegistry();
    const r1 = await runPipeline(config("latest"), { registry: reg, log });
    expect(r1.record.outcome, r1.record.reason).toBe("published");
    expect(r1.record.data!.files.map((f) => f.rows)).toEqual([3000, 0]);
    // The next night: both files replaced; part-1.csv starts with the header that was all of it.
    await writeFile(join(latest, "part-0.csv"), toCsv(rows.slice(3000, 5000)));
    await writeFile(join(latest, "part-1.csv"), toCsv(rows.slice(5000, 6000)));
    const r = await runPipeline(config("latest"), { registry: reg, log, dryRun: true });
    expect(r.record.outcome, r.record.reason).toBe("dry-run");
    expect(r.record.data!.partlyPublishedBefore).toBeUndefined();
  });
});

describe("an s3:// source's files", () => {
  it("are named by their URL, not the run folder they were downloaded into", async () => {
    const root = "/work/runs/20261207T031700000Z-aaaaaaaa/data/s3";
    expect(downloadedFrom(`${root}/logs/day=7/part-0.csv`, root)).toBe("s3://logs/day=7/part-0.csv");
    expect(downloadedFrom("/srv/logs/part-0.csv", root)).toBeUndefined();

    // Night 1 downloaded part-0.csv into its run folder; night 2 into another, grown since. Both
    // over 64 KiB, so their records carry the digest of their first 64 KiB (head).
    const work = join(dir, "s3-runs");
    const night1 = join(work, "1", "data", "s3", "logs", "day=7", "part-0.csv");
    const night2 = join(work, "2", "data", "s3", "logs", "day=7", "part-0.csv");
    await mkdir(join(night1, ".."), { recursive: true });
    await mkdir(join(night2, ".."), { recursive: true });
    const early = toCsv(rows.slice(0, 1000));
    await writeFile(night1, early);
    await writeFile(night2, `${early}${toCsv(rows.slice(1000, 2000)).split("\n").slice(1).join("\n")}`);
    const url = "s3://logs/day=7/part-0.csv";
    const before = { ...(await fileRecord(night1)), rows: 1000, source: url };
    const grown = { ...(await fileRecord(night2)), rows: 2000, source: url };
    expect(before.bytes).toBe(Buffer.byteLength(early));
    expect(before.sha256).toBe(createHash("sha256").update(early).digest("hex"));
    expect(before.head).toBe(
      createHash("sha256").update(Buffer.from(early).subarray(0, HEAD_BYTES)).digest("hex"),
    );
    expect(grown.head).toBe(before.head);
    expect(fileName(grown)).toBe(url);

    const reg = new MemoryRegistry();
    const published = (day: number, runId: string, file: DataFileRecord) =>
      putRecord(reg, {
        format: 1,
        kind: "run",
        runId,
        startedAt: `2026-12-0${day}T03:17:00.000Z`,
        outcome: "published",
        published: { prefix: `models/${String(day).repeat(64)}/`, pointer: "models/current" },
        data: { files: [file] },
      });
    await published(7, "77777777", before);
    // Newer records of the same URL that are not its beginning: a shorter state with another
    // sha256 (read in the same pass), and one whose bytes and sha256 would match but whose head
    // does not (never read: the heads tell them apart first).
    await published(8, "88888888", {
      ...before,
      bytes: 500,
      sha256: "0".repeat(64),
      head: undefined,
    } as DataFileRecord);
    await published(9, "99999999", { ...before, head: "f".repeat(64) });
    expect((await dataBefore(reg, [grown])).seen).toEqual([
      {
        file: grown,
        run: {
          runId: "77777777",
          startedAt: "2026-12-07T03:17:00.000Z",
          prefix: `models/${"7".repeat(64)}/`,
        },
        bytesBefore: before.bytes,
      },
    ]);
    // By path alone (as before the URL was recorded), the two downloads are different files.
    const { source: _, ...byPath } = grown;
    expect((await dataBefore(reg, [byPath])).seen).toEqual([]);
  });

  it("looks past a scheduler's not-ready retries: the newest 100 published runs, not the newest 100 records", async () => {
    const reg = new MemoryRegistry();
    const file = {
      path: "/logs/day=7/part-0.csv",
      bytes: 10,
      sha256: "a".repeat(64),
      rows: 3,
    } as DataFileRecord;
    await putRecord(reg, {
      format: 1,
      kind: "run",
      runId: "pub00001",
      startedAt: "2026-12-01T03:00:00.000Z",
      outcome: "published",
      published: { prefix: `models/${"1".repeat(64)}/`, pointer: "models/current" },
      data: { files: [file] },
    });
    // A week of nights whose export was late, retried every few minutes: 150 not-ready records.
    for (let i = 0; i < 150; i++)
      await putRecord(reg, {
        format: 1,
        kind: "run",
        runId: `late${String(i).padStart(4, "0")}`,
        startedAt: new Date(Date.parse("2026-12-02T03:00:00.000Z") + i * 600_000).toISOString(),
        outcome: "not-ready",
      });
    expect((await dataBefore(reg, [file])).whole?.runId).toBe("pub00001");
  });
});
