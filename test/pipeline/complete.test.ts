/**
 * data.complete (trainer/pipeline/complete.ts): whether a source holds a whole day, from its
 * listing, before anything is read or downloaded: a marker (`_SUCCESS`) vouching for every folder
 * that holds data files, and a quiet period every file's last modification must be older than.
 * Local folders, globs and an s3:// prefix (a tiny S3 on 127.0.0.1 that lists with LastModified
 * and counts its downloads), through resolveDataFiles and sourceCompleteness.
 */
import { mkdir, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { globOwns, NotReadyError, s3Folders } from "../../trainer/pipeline/complete.ts";
import { resolveDataFiles, sourceCompleteness } from "../../trainer/pipeline/data.ts";
import { csvText, makeRows, tempDir } from "./data-rows.ts";
import { bucketHandler, type FakeObject, type FakeS3, fakeS3 } from "./fake-s3.ts";

const rows = makeRows(5);
const HOUR = 3_600_000;

/** A file written now, or with its mtime `ageMs` ago. */
async function put(path: string, text = csvText(rows), ageMs?: number): Promise<string> {
  await writeFile(path, text);
  if (ageMs !== undefined) {
    const at = (Date.now() - ageMs) / 1000;
    await utimes(path, at, at);
  }
  return path;
}

/** The NotReadyError resolveDataFiles throws for `source` (fails the test when it does not). */
async function notReady(
  source: string,
  options: Parameters<typeof resolveDataFiles>[1],
): Promise<NotReadyError> {
  try {
    await resolveDataFiles(source, options);
  } catch (error) {
    expect(error).toBeInstanceOf(NotReadyError);
    return error as NotReadyError;
  }
  throw new Error(`expected ${source} not to be ready`);
}

const SUFFIX = "; no data file was read and nothing published (run again once the export has finished)";

describe("a local source's marker", () => {
  it("a folder without its marker is not ready, naming it; with it, its files are the day's", async () => {
    const day = await tempDir();
    const a = await put(join(day, "part-0.csv"));
    const b = await put(join(day, "part-1.csv"));
    const complete = { marker: "_SUCCESS" };
    const e = await notReady(day, { complete });
    expect(e.message).toBe(
      `data.source ${day} is not complete: no _SUCCESS in ${day} (2 data files)${SUFFIX}`,
    );
    expect(e.completeness).toMatchObject({ ready: false, marker: "_SUCCESS", files: 2 });
    expect(e.completeness.lacking).toEqual([{ folder: day, files: 2 }]);
    // Without data.complete, the same folder reads as it always did.
    expect(await resolveDataFiles(day)).toEqual([a, b]);

    await writeFile(join(day, "_SUCCESS"), "");
    expect(await resolveDataFiles(day, { complete })).toEqual([a, b]);
    const found = await sourceCompleteness(day, complete);
    expect(found).toMatchObject({ ready: true, files: 2 });
    expect(found.detail).toBe(`${day}: _SUCCESS for every data file, 2 data files`);
  });

  it("a glob over two day folders: the one without its marker is named; a marker above them vouches for neither", async () => {
    const logs = await tempDir();
    for (const d of ["2026-12-06", "2026-12-07"]) await mkdir(join(logs, d));
    await put(join(logs, "2026-12-06", "part-0.csv"));
    await put(join(logs, "2026-12-07", "part-0.csv"));
    await put(join(logs, "2026-12-07", "part-1.csv"));
    await writeFile(join(logs, "2026-12-06", "_SUCCESS"), "");
    await writeFile(join(logs, "_SUCCESS"), "");
    const glob = join(logs, "2026-12-0[67]", "*.csv");
    const e = await notReady(glob, { complete: { marker: "_SUCCESS" } });
    expect(e.message).toBe(
      `data.source ${glob} is not complete: no _SUCCESS in ${join(logs, "2026-12-07")} (2 data files)${SUFFIX}`,
    );
    expect(e.completeness.lacking).toEqual([{ folder: join(logs, "2026-12-07"), files: 2 }]);
    // `*` picks among day folders as [67] does: logs/_SUCCESS is not the days' marker.
    await expect(
      resolveDataFiles(join(logs, "*", "*.csv"), { complete: { marker: "_SUCCESS" } }),
    ).rejects.toThrow(`no _SUCCESS in ${join(logs, "2026-12-07")} (2 data files)`);
    await writeFile(join(logs, "2026-12-07", "_SUCCESS"), "");
    expect(await resolveDataFiles(glob, { complete: { marker: "_SUCCESS" } })).toHaveLength(3);
  });

  it("one marker at the root of a `**` glob covers the partition folders below it", async () => {
    const day = await tempDir();
    for (const h of ["hour=00", "hour=01"]) {
      await mkdir(join(day, h));
      await put(join(day, h, "part-0.csv"));
    }
    const glob = join(day, "**", "*.csv");
    const e = await notReady(glob, { complete: { marker: "_SUCCESS" } });
    expect(e.message).toContain(
      `no _SUCCESS in ${join(day, "hour=00")} (1 data file, nor in a folder above it up to ${day}), ${join(day, "hour=01")} (1 data file, nor in a folder above it up to ${day})`,
    );
    await writeFile(join(day, "_SUCCESS"), "");
    expect(await resolveDataFiles(glob, { complete: { marker: "_SUCCESS" } })).toHaveLength(2);
  });

  it("a missing or empty folder is not ready; an empty one with its marker is the empty day", async () => {
    const logs = await tempDir();
    const day = join(logs, "2026-12-06");
    const complete = { marker: "_SUCCESS" };
    expect((await notReady(day, { complete })).message).toBe(
      `data.source ${day} is not complete: it does not exist yet${SUFFIX}`,
    );
    await mkdir(day);
    expect((await notReady(day, { complete })).message).toBe(
      `data.source ${day} is not complete: it holds no data file yet, and no _SUCCESS${SUFFIX}`,
    );
    await writeFile(join(day, "_SUCCESS"), "");
    await expect(resolveDataFiles(day, { complete })).rejects.toThrow(`no rows in ${day}: no data files`);
    // Without data.complete: the error it always was.
    await expect(resolveDataFiles(join(logs, "2026-12-07"))).rejects.toThrow("no such data file or folder");
  });

  it("a marker named like a data file is never read as data", async () => {
    const day = await tempDir();
    const part = await put(join(day, "part-0.csv"));
    await writeFile(join(day, "DONE.json"), "{}");
    expect(await resolveDataFiles(day, { complete: { marker: "DONE.json" } })).toEqual([part]);
    expect(await resolveDataFiles(join(day, "*"), { complete: { marker: "DONE.json" } })).toEqual([part]);
  });
});

describe("a local source's quiet period", () => {
  it("a file modified within it is not ready, named with its age; older, the day is read", async () => {
    const day = await tempDir();
    await put(join(day, "part-0.csv"), undefined, 2 * HOUR);
    const late = await put(join(day, "part-1.csv"));
    // Its mtime a whole second, and the run's clock 42 s later.
    const t0 = Math.floor(Date.now() / 1000) * 1000 - 60_000;
    await utimes(late, t0 / 1000, t0 / 1000);
    const complete = { quietMinutes: 10 };
    const e = await notReady(day, { complete, now: () => t0 + 42_000 });
    expect(e.message).toBe(
      `data.source ${day} is not complete: modified within the last 10 min: part-1.csv 42 s ago (data.complete.quietMinutes 10: quiet in 9 min 18 s at the earliest)${SUFFIX}`,
    );
    expect(e.completeness.recent).toEqual([{ file: late, ageS: 42 }]);

    // Touched by a writer now, on the real clock: named first, the newest.
    await put(join(day, "part-0.csv"));
    const again = await notReady(day, { complete });
    expect(again.message).toMatch(
      /modified within the last 10 min: part-0\.csv \d s ago, part-1\.csv 1 min( \d+ s)? ago /,
    );

    const at = (Date.now() - HOUR) / 1000;
    for (const f of ["part-0.csv", "part-1.csv"]) await utimes(join(day, f), at, at);
    expect(await resolveDataFiles(day, { complete })).toHaveLength(2);
    expect((await sourceCompleteness(day, complete)).detail).toBe(
      `${day}: 2 data files, the newest modified 1 h ago (quiet period 10 min)`,
    );
  });

  it("the clock a run passes measures it; a time ahead of it is too new", async () => {
    const day = await tempDir();
    const file = await put(join(day, "part-0.csv"));
    const t0 = Math.floor(Date.now() / 1000) * 1000 - 20 * 60_000;
    await utimes(file, t0 / 1000, t0 / 1000);
    const complete = { quietMinutes: 10 };
    expect(await resolveDataFiles(day, { complete })).toHaveLength(1);
    expect((await notReady(day, { complete, now: () => t0 + 5 * 60_000 })).message).toContain(
      "part-0.csv 5 min ago",
    );
    expect((await notReady(day, { complete, now: () => t0 - 5 * 60_000 })).message).toContain(
      "part-0.csv 5 min ahead of this clock",
    );
  });
});

describe("which folders a marker vouches for", () => {
  it("a glob's: below its fixed folders, and that folder itself before `**`", () => {
    const inside = globOwns("/logs/2026-12-0[67]/*.csv");
    expect(inside("/logs")).toBe(false);
    expect(inside("/logs/2026-12-06")).toBe(true);
    const tree = globOwns("/logs/2026-12-06/**/*.parquet");
    expect(tree("/logs/2026-12-06")).toBe(true);
    expect(tree("/logs")).toBe(false);
    expect(globOwns("logs/*/part-*.csv")("logs")).toBe(false);
    expect(globOwns("logs/*/part-*.csv")("logs/d1")).toBe(true);
  });

  it("an s3:// prefix's: the key's folder and those above it that begin with the prefix", () => {
    expect(s3Folders("b", "logs/day=1/hour=01/p.csv", "logs/day=1/")).toEqual([
      "s3://b/logs/day=1/hour=01/",
      "s3://b/logs/day=1/",
    ]);
    expect(s3Folders("b", "logs/day=1/p.csv", "logs/day=1")).toEqual(["s3://b/logs/day=1/"]);
    expect(s3Folders("b", "logs/day=1/p.csv", "")).toEqual(["s3://b/logs/day=1/", "s3://b/logs/", "s3://b/"]);
  });
});

describe("an s3:// prefix", () => {
  const old = new Date(Date.now() - 2 * HOUR);
  /** day=4's part: modified on a whole second, read 90 s later by the clock that test passes. */
  const DAY4 = Math.floor(Date.now() / 1000) * 1000 - 60_000;
  const objects = new Map<string, FakeObject>();
  const gets: string[] = [];
  let s3: FakeS3 | undefined;
  let client: S3Client;
  const put3 = (key: string, body = csvText(rows), modified = old) =>
    objects.set(key, { body: Buffer.from(body), modified });

  beforeAll(async () => {
    put3("logs/day=1/part-0.csv");
    put3("logs/day=1/part-1.csv");
    put3("logs/day=2/part-0.csv");
    put3("logs/day=2/_SUCCESS", "");
    put3("logs/day=3/hour=00/part-0.csv");
    put3("logs/day=3/hour=01/part-0.csv");
    put3("logs/day=3/_SUCCESS", "");
    put3("logs/day=4/part-0.csv", csvText(rows), new Date(DAY4));
    put3("logs/day=4/_SUCCESS", "");
    put3("logs/day=5/_SUCCESS", "");
    s3 = await fakeS3(bucketHandler("logs-bucket", objects, gets));
    client = s3.client;
  });

  afterAll(async () => {
    await s3?.close();
  });

  it("without its marker: not ready, naming the folder, and nothing downloaded", async () => {
    const work = await tempDir();
    gets.length = 0;
    const e = await notReady("s3://logs-bucket/logs/day=1/", {
      workDir: work,
      s3: client,
      complete: { marker: "_SUCCESS" },
    });
    expect(e.message).toBe(
      `data.source s3://logs-bucket/logs/day=1/ is not complete: no _SUCCESS in s3://logs-bucket/logs/day=1/ (2 data files)${SUFFIX}`,
    );
    expect(gets).toEqual([]);
    const found = await sourceCompleteness(
      "s3://logs-bucket/logs/day=1/",
      { marker: "_SUCCESS" },
      { s3: client },
    );
    expect(found.ready).toBe(false);
  });

  it("with its marker (at the prefix's root for partition folders): downloaded", async () => {
    const work = await tempDir();
    const complete = { marker: "_SUCCESS", quietMinutes: 10 };
    const day2 = await resolveDataFiles("s3://logs-bucket/logs/day=2/", {
      workDir: work,
      s3: client,
      complete,
    });
    expect(day2).toEqual([join(work, "s3", "logs-bucket", "logs", "day=2", "part-0.csv")]);
    const day3 = await resolveDataFiles("s3://logs-bucket/logs/day=3", {
      workDir: work,
      s3: client,
      complete,
    });
    expect(day3).toHaveLength(2);
    expect((await sourceCompleteness("s3://logs-bucket/logs/day=3/", complete, { s3: client })).detail).toBe(
      "s3://logs-bucket/logs/day=3/: _SUCCESS for every data file, 2 data files, the newest modified 2 h ago (quiet period 10 min)",
    );
  });

  it("an object modified within the quiet period, from the listing's LastModified: not ready, nothing downloaded", async () => {
    const work = await tempDir();
    gets.length = 0;
    const e = await notReady("s3://logs-bucket/logs/day=4/", {
      workDir: work,
      s3: client,
      complete: { marker: "_SUCCESS", quietMinutes: 10 },
      now: () => DAY4 + 90_000,
    });
    expect(e.message).toBe(
      `data.source s3://logs-bucket/logs/day=4/ is not complete: modified within the last 10 min: s3://logs-bucket/logs/day=4/part-0.csv 1 min 30 s ago (data.complete.quietMinutes 10: quiet in 8 min 30 s at the earliest)${SUFFIX}`,
    );
    expect(gets).toEqual([]);
  });

  it("a prefix with no object is not ready; its marker alone makes it the empty day", async () => {
    const work = await tempDir();
    const complete = { marker: "_SUCCESS" };
    expect(
      (await notReady("s3://logs-bucket/logs/day=9/", { workDir: work, s3: client, complete })).message,
    ).toBe(
      `data.source s3://logs-bucket/logs/day=9/ is not complete: it holds no data object yet, and no _SUCCESS${SUFFIX}`,
    );
    await expect(
      resolveDataFiles("s3://logs-bucket/logs/day=5/", { workDir: work, s3: client, complete }),
    ).rejects.toThrow("no rows in s3://logs-bucket/logs/day=5/");
  });
});
