import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { parseSpec } from "../../shared/spec.ts";
import { loadDataset } from "../../trainer/data/load-dataset.ts";
import { readSpecFile } from "../../trainer/data/read-spec.ts";
import { splitRows } from "../../trainer/data/split.ts";

const spec = parseSpec({
  format: "csv",
  group: "req",
  features: [
    { name: "x", type: "numeric" },
    { name: "c", type: "categorical" },
  ],
  tasks: [
    { name: "click", type: "binary", column: "y" },
    { name: "dwell", type: "regression", column: "d", transform: "log1p" },
  ],
});

async function file(name: string, text: string | Uint8Array): Promise<string> {
  const path = join(await mkdtemp(join(tmpdir(), "mtrank-data-")), name);
  await writeFile(path, text);
  return path;
}

describe("loadDataset", () => {
  it("reads CSV rows, labels and groups", async () => {
    const path = await file("a.csv", "req,x,c,y,d\nr1,1.5,a,1,3\nr1,,b,0,0\nr2,2,a,0,1\n");
    const data = await loadDataset(path, spec);
    expect(data.rows).toHaveLength(3);
    expect([...data.labels.click!]).toEqual([1, 0, 0]);
    expect(data.labels.dwell![0]).toBeCloseTo(Math.log1p(3), 6);
    expect(data.groups).toEqual(["r1", "r1", "r2"]);
  });

  it("a row without its group id is a bad row naming the line, not a member of one list of all such rows", async () => {
    for (const [name, text] of [
      ["empty.csv", "req,x,c,y,d\nr1,1.5,a,1,3\n,2,b,0,0\n"],
      ["na.csv", "req,x,c,y,d\nr1,1.5,a,1,3\nNA,2,b,0,0\n"],
      ["absent.jsonl", '{"req":"r1","x":1,"c":"a","y":1,"d":3}\n{"x":2,"c":"b","y":0,"d":0}\n'],
      ["null.jsonl", '{"req":"r1","x":1,"c":"a","y":1,"d":3}\n{"req":null,"x":2,"c":"b","y":0,"d":0}\n'],
    ] as const) {
      const path = await file(name, text);
      const format = name.endsWith(".jsonl") ? "jsonl" : "csv";
      await expect(loadDataset(path, { ...spec, format }), name).rejects.toThrow(
        new RegExp(`${name}:(3|2): column "req": no group id \\(spec.group\\)`),
      );
    }
  });

  it("reads gzip and JSONL", async () => {
    const gz = await file("a.csv.gz", gzipSync("req,x,c,y,d\nr1,1,a,1,0\n"));
    expect((await loadDataset(gz, spec)).rows).toHaveLength(1);
    const jsonl = await file(
      "a.jsonl",
      '{"req":"r","x":1,"c":"a","y":"1","d":2}\n\n{"req":"r","x":null,"y":"0","d":0}\n',
    );
    const data = await loadDataset(jsonl, { ...spec, format: "jsonl" });
    expect([...data.labels.click!]).toEqual([1, 0]);
  });

  it("names the file, line and column of a bad number", async () => {
    const path = await file("bad.csv", "req,x,c,y,d\nr1,1,a,1,0\nr1,abc,a,1,0\n");
    await expect(loadDataset(path, spec)).rejects.toThrow(/bad\.csv:3: column "x": "abc" is not a number/);
  });

  it("names a missing label column and a bad JSONL line", async () => {
    const path = await file("nolabel.csv", "req,x,c,d\nr1,1,a,0\n");
    await expect(loadDataset(path, spec)).rejects.toThrow(/tasks\.click\.column: no column "y"/);
    const jsonl = await file("b.jsonl", '{"req":"r","x":1,"c":"a","y":"1","d":2}\n{oops\n');
    await expect(loadDataset(jsonl, { ...spec, format: "jsonl" })).rejects.toThrow(
      /b\.jsonl:2: not valid JSON/,
    );
  });

  it("turns a missing file or a corrupt .gz into a DataError naming the file, CSV and JSONL", async () => {
    const dir = await mkdtemp(join(tmpdir(), "mtrank-missing-"));
    const jsonl = { ...spec, format: "jsonl" as const };
    for (const s of [spec, jsonl]) {
      await expect(loadDataset(join(dir, "nope.csv"), s)).rejects.toThrow(/nope\.csv: ENOENT/);
      const bad = await file(`bad-${s.format}.gz`, "not gzip at all");
      await expect(loadDataset(bad, s)).rejects.toThrow(
        new RegExp(`bad-${s.format}\\.gz: incorrect header check`),
      );
    }
  });

  it("ingests the real-schema samples", async () => {
    for (const [data, specFile] of [
      ["ali_ccp_sample.csv", "ali_ccp"],
      ["aliexpress_sample.csv", "aliexpress"],
      ["criteo_sample.csv", "criteo"],
    ]) {
      const loaded = await loadDataset(
        `fixtures/real-logs/${data}`,
        await readSpecFile(`fixtures/specs/${specFile}.json`),
      );
      expect(loaded.rows.length).toBeGreaterThan(90);
    }
  });
});

describe("splitRows", () => {
  it("keeps every group on one side and is reproducible", () => {
    const groups = Array.from({ length: 2000 }, (_, i) => `g${Math.floor(i / 10)}`);
    const a = splitRows(groups.length, groups, 0.2, 1);
    const b = splitRows(groups.length, groups, 0.2, 1);
    expect(a).toEqual(b);
    const validGroups = new Set(a.valid.map((i) => groups[i]));
    expect(a.train.some((i) => validGroups.has(groups[i]))).toBe(false);
    expect(a.valid.length / groups.length).toBeGreaterThan(0.1);
    expect(a.valid.length / groups.length).toBeLessThan(0.3);
  });
});
