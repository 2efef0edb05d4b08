/**
 * The newest slice of the day's data (trainer/pipeline/newest.ts), which both models are also
 * scored on, split from the rows the candidate trains on.
 */
import { mkdtemp, readdir, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { NewestSliceConfig } from "../../trainer/pipeline/config.ts";
import { splitNewest } from "../../trainer/pipeline/newest.ts";

async function jsonl(rows: object[]): Promise<{ dir: string; file: string }> {
  const dir = await mkdtemp(join(tmpdir(), "mtrank-newest-"));
  const file = join(dir, "rows.jsonl");
  await writeFile(file, `${rows.map((r) => JSON.stringify(r)).join("\n")}\n`);
  return { dir, file };
}

/** splitNewest into `name`.jsonl and `name`-train.jsonl beside `file`. */
const newestSlice = (file: string, slice: NewestSliceConfig, out: string) =>
  splitNewest(file, slice, { newest: out, train: out.replace(/\.jsonl$/, "-train.jsonl") });

const ids = async (file: string) =>
  (await readFile(file, "utf8"))
    .trim()
    .split("\n")
    .map((l) => (JSON.parse(l) as { id: number }).id);

describe("newest slice", () => {
  it("the last N rows in file order; the rest, in order, are what is trained on", async () => {
    const { dir, file } = await jsonl(Array.from({ length: 10 }, (_, id) => ({ id })));
    const s = await newestSlice(file, { rows: 3 }, join(dir, "out.jsonl"));
    expect(s).toMatchObject({
      rows: 3,
      description: "the last 3 rows of 10 in the new data, in file order, held out of training",
      train: { file: join(dir, "out-train.jsonl"), rows: 7 },
    });
    expect(await ids(s!.file)).toEqual([7, 8, 9]);
    expect(await ids(s!.train.file)).toEqual([0, 1, 2, 3, 4, 5, 6]);
  });

  it("a slice over half the day fails, writing nothing", async () => {
    const { dir, file } = await jsonl(Array.from({ length: 10 }, (_, id) => ({ id, ts: id })));
    await expect(newestSlice(file, { rows: 6 }, join(dir, "six.jsonl"))).rejects.toThrow(
      "evaluation.newest: the newest slice would hold 6 of the day's 10 rows, which the candidate does not train on; over half the day is left out of training: ask for fewer rows or hours",
    );
    await expect(
      newestSlice(file, { timeColumn: "ts", hours: 24, numbers: "seconds" }, join(dir, "day.jsonl")),
    ).rejects.toThrow("the newest slice would hold 10 of the day's 10 rows");
    expect((await readdir(dir)).sort()).toEqual(["rows.jsonl"]);
    expect(await newestSlice(file, { rows: 5 }, join(dir, "five.jsonl"))).toMatchObject({ rows: 5 });
  });

  it("rows within H hours of the newest time: unix seconds, milliseconds or dates", async () => {
    const hour = 3600;
    const { dir, file } = await jsonl([
      { id: 0, ts: 1_000_000 },
      { id: 1, ts: String(1_000_000 + 30 * hour) },
      { id: 2, ts: 1_000_000 + 5 * hour },
      { id: 3, ts: 1_000_000 + 29 * hour },
      { id: 4, ts: "" },
    ]);
    const s = await newestSlice(
      file,
      { timeColumn: "ts", hours: 24, numbers: "seconds" },
      join(dir, "s.jsonl"),
    );
    expect(await ids(s!.file)).toEqual([1, 3]);
    // A row without a readable time is not known to be new: trained on.
    expect(await ids(s!.train.file)).toEqual([0, 2, 4]);
    expect(s!.description).toMatch(
      /^rows whose ts is within 24 h of the newest \(1970-01-13T.*: 2, held out of training$/,
    );
    const dates = await jsonl([
      { id: 0, day: "2026-01-01T00:00:00Z" },
      { id: 1, day: "2026-01-03T12:00:00Z" },
      { id: 2, day: "2026-01-03T00:00:00Z" },
      { id: 3, day: "2026-01-01T12:00:00Z" },
      { id: 4, day: "2026-01-02T00:00:00Z" },
    ]);
    const d = await newestSlice(
      dates.file,
      { timeColumn: "day", hours: 24, numbers: "seconds" },
      join(dates.dir, "d.jsonl"),
    );
    expect(await ids(d!.file)).toEqual([1, 2]);
    const ms = await jsonl([
      { id: 0, t: 0 },
      { id: 1, t: 7_200_000 },
      { id: 2, t: 3_000_000 },
    ]);
    const m = await newestSlice(
      ms.file,
      { timeColumn: "t", hours: 1, numbers: "milliseconds" },
      join(ms.dir, "m.jsonl"),
    );
    expect(await ids(m!.file)).toEqual([1]);
  });

  it("no readable time, or no such column: an error naming the config field, not a silent empty slice", async () => {
    const { dir, file } = await jsonl([{ id: 0, ts: "soon" }]);
    await expect(
      newestSlice(file, { timeColumn: "ts", hours: 24, numbers: "seconds" }, join(dir, "x.jsonl")),
    ).rejects.toThrow(
      'evaluation.newest.timeColumn: no value of column "ts" reads as a time (1 rows have the column)',
    );
    await expect(
      newestSlice(file, { timeColumn: "nocol", hours: 24, numbers: "seconds" }, join(dir, "y.jsonl")),
    ).rejects.toThrow('evaluation.newest.timeColumn: no row of the new data has a column "nocol"');
  });
});
