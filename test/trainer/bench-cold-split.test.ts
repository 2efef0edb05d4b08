/** bench:quality --cold (bench/cold-split.ts): held-out values leave training and alone stay in test. */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { coldSplit, isCold } from "../../bench/cold-split.ts";
import type { DatasetSpec } from "../../shared/spec.ts";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "mtrank-cold-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const CSV: Pick<DatasetSpec, "format" | "delimiter" | "trim" | "missing"> = {
  format: "csv",
  delimiter: ",",
  trim: true,
  missing: ["", "NA"],
};
const users = Array.from({ length: 200 }, (_, i) => `u${i}`);
const held = users.filter((u) => isCold(u));

describe("cold split", () => {
  it("holds out about a tenth of the values, always the same ones", () => {
    expect(held.length).toBeGreaterThan(8);
    expect(held.length).toBeLessThan(40);
    expect(users.filter((u) => isCold(u))).toEqual(held);
    for (const missing of ["", null, undefined]) expect(isCold(missing)).toBe(false);
    // A value the spec calls missing is never a new user; one with spaces reads trimmed.
    const rules = { trim: true, missing: new Set(["NA"]) };
    expect(users.some((u) => isCold(u) && !isCold(` ${u} `, rules))).toBe(false);
  });

  it("CSV: training keeps no held-out value, test only those; quoted fields read back as written", async () => {
    const line = (u: string, i: number) => `${u},"a|b, ""c""",${i % 2}`;
    const rows = users.flatMap((u, i) => [line(u, i), line(u, i + 1)]);
    const train = join(dir, "train.csv");
    const test = join(dir, "test.csv");
    await writeFile(train, ["user,tags,y", ...rows].join("\n"));
    await writeFile(test, ["user,tags,y", ...rows.slice(0, 100)].join("\n"));
    const split = await coldSplit({ train, test, spec: "s.json" }, "user", CSV, join(dir, "csv"));
    const read = async (f: string) => (await readFile(f, "utf8")).trim().split(/\r?\n/);
    const [header, ...kept] = await read(split.train);
    expect(header).toBe("user,tags,y");
    expect(kept).toEqual(rows.filter((r) => !isCold(r.split(",")[0])));
    const [, ...cold] = await read(split.test);
    expect(cold).toEqual(rows.slice(0, 100).filter((r) => isCold(r.split(",")[0])));
    expect(split.rows).toEqual({ train: kept.length, test: cold.length });
    await expect(coldSplit({ train, test, spec: "s.json" }, "nobody", CSV, join(dir, "x"))).rejects.toThrow(
      "--cold nobody: ",
    );
  });

  it("CSV with the spec's delimiter: read and written with it", async () => {
    const rows = users.map((u, i) => `${u};"1,5";${i % 2}`);
    const file = join(dir, "semi.csv");
    await writeFile(file, ["user;price;y", ...rows].join("\n"));
    const spec = { ...CSV, delimiter: ";" };
    const split = await coldSplit(
      { train: file, test: file, spec: "s.json" },
      "user",
      spec,
      join(dir, "semi"),
    );
    const [header, ...cold] = (await readFile(split.test, "utf8")).trim().split(/\r?\n/);
    expect(header).toBe("user;price;y");
    expect(cold).toEqual(rows.filter((r) => isCold(r.split(";")[0])).map((r) => r.replace('"1,5"', "1,5")));
  });

  it("JSONL: the same by each record's field", async () => {
    const lines = users.map((u, i) => JSON.stringify({ user: u, y: i % 2 }));
    const file = join(dir, "rows.jsonl");
    await writeFile(file, `${lines.join("\n")}\n`);
    const split = await coldSplit(
      { train: file, test: file, spec: "s.json" },
      "user",
      { ...CSV, format: "jsonl" },
      join(dir, "j"),
    );
    const read = async (f: string) => (await readFile(f, "utf8")).trim().split("\n");
    expect(await read(split.test)).toEqual(lines.filter((_, i) => isCold(users[i])));
    expect(await read(split.train)).toEqual(lines.filter((_, i) => !isCold(users[i])));
  });
});
