import { appendFileSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { parseSpec } from "../../shared/spec.ts";
import { loadDataset } from "../../trainer/data/load-dataset.ts";
import { DataError } from "../../trainer/data/read-rows.ts";
import { badRowReason, checkData, resolveDataFiles } from "../../trainer/pipeline/data.ts";
import { prepareData, unchangedSince } from "../../trainer/pipeline/prepare.ts";
import {
  csvText,
  makeRows,
  PARQUET_CODECS,
  spec,
  tempDir,
  writeCsv,
  writeJsonl,
  writeParquet,
} from "./data-rows.ts";

describe("resolveDataFiles", () => {
  it("takes a file, a folder's data files in name order, or a glob", async () => {
    const dir = await tempDir();
    const rows = makeRows(3);
    const b = await writeCsv(dir, "part-b.csv", rows);
    const a = await writeJsonl(dir, "part-a.jsonl.gz", rows);
    const c = writeParquet(dir, "part-c.parquet", rows);
    // Spark's markers and checksums, and files that are not logs, are not part of the day.
    await writeFile(join(dir, "_SUCCESS"), "");
    await writeFile(join(dir, ".part-b.csv.crc"), "x");
    await writeFile(join(dir, "notes.txt"), "x");
    await mkdir(join(dir, "sub"));
    await writeCsv(join(dir, "sub"), "deeper.csv", rows);

    expect(await resolveDataFiles(b)).toEqual([b]);
    expect(await resolveDataFiles(dir)).toEqual([a, b, c]);
    expect(await resolveDataFiles(join(dir, "part-*"))).toEqual([a, b, c]);
    expect(await resolveDataFiles(join(dir, "**/*.csv"))).toEqual([b, join(dir, "sub", "deeper.csv")]);
  });

  it("names a missing source and calls a folder or glob with no data an empty day", async () => {
    const dir = await tempDir();
    await expect(resolveDataFiles(join(dir, "gone.csv"))).rejects.toThrow(
      `${join(dir, "gone.csv")}: no such`,
    );
    await writeFile(join(dir, "_SUCCESS"), "");
    await expect(resolveDataFiles(dir)).rejects.toThrow(`no rows in ${dir}`);
    await expect(resolveDataFiles(join(dir, "*.parquet"))).rejects.toThrow(
      `no rows in ${join(dir, "*.parquet")}`,
    );
  });
});

describe("checkData", () => {
  it("reads CSV, gzipped JSONL and Parquet as one log, in order, into one JSONL file", async () => {
    const dir = await tempDir();
    const rows = makeRows(60);
    const files = [
      await writeCsv(dir, "1.csv", rows.slice(0, 20)),
      await writeJsonl(dir, "2.jsonl.gz", rows.slice(20, 40)),
      writeParquet(dir, "3.parquet", rows.slice(40), { rowGroupSize: 7 }),
    ];
    const out = join(dir, "work", "rows.jsonl");
    const seen: number[] = [];
    const check = await checkData(files, spec, {
      maxBadRows: 0,
      out,
      onRow: (_, labels) => seen.push(labels[0]!),
    });
    expect(check).toMatchObject({ rows: 60, kept: 60, skipped: 0, reasons: {} });
    expect(check.files.map((f) => [f.format, f.rows])).toEqual([
      ["csv", 20],
      ["jsonl", 20],
      ["parquet", 20],
    ]);
    expect(seen).toEqual(rows.map((r) => r.click));
    const written = (await readFile(out, "utf8"))
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line));
    expect(written).toHaveLength(60);
    // Typed values survive: Parquet's INT64 click is a number, its null price stays null.
    const last = written[59] as Record<string, unknown>;
    expect(last.click).toBe(rows[59]!.click);
    expect(last.price).toBe(rows[59]!.price);
    expect(written[0]).toMatchObject({ country: rows[0]!.country ?? "" });
  });

  it("reads Parquet compressed with each codec Node can decompress", async () => {
    const dir = await tempDir();
    const rows = makeRows(30);
    expect(PARQUET_CODECS).toContain("GZIP");
    for (const codec of PARQUET_CODECS) {
      const file = writeParquet(dir, `${codec}.parquet`, rows, { codec });
      expect((await checkData([file], spec, { maxBadRows: 0 })).kept, codec).toBe(30);
    }
  });

  it("names a NaN or an infinity in a Parquet number column by its value and column", async () => {
    const dir = await tempDir();
    const rows = makeRows(6, { missingPrice: 0 });
    rows[1]!.price = Number.NaN;
    rows[2]!.price = Number.POSITIVE_INFINITY;
    rows[3] = { ...rows[3]!, click: 1, dwell: Number.NaN };
    const file = writeParquet(dir, "nan.parquet", rows);
    const check = await checkData([file], spec, { maxBadRows: 5 });
    expect(check.examples).toEqual([
      `${file}:2: column "price": NaN is not a number`,
      `${file}:3: column "price": Infinity is not a number`,
      `${file}:4: column "dwell": NaN is not a number`,
    ]);
    expect(check.reasons).toEqual({ 'column "price": not a number': 2, 'column "dwell": not a number': 1 });
  });

  it("skips bad rows within the budget and counts them per reason", async () => {
    const dir = await tempDir();
    const csv = join(dir, "a.csv");
    await writeFile(
      csv,
      [
        "price,country,tags,emb,click,dwell",
        "1,us,a,0 1,1,3",
        "abc,us,a,0 1,0,", // price not a number
        "xyz,us,a,0 1,0,", // again
        "2,us,a,0 1,maybe,", // not a binary label
        "3,us,a,0 1 2,0,", // vector of 3
        "4,us,a,0 1,0", // one field short
        "5,us,a,0 1,1,-2", // log1p out of range
        "6,de,b,1 0,0,",
      ].join("\n"),
    );
    const jsonl = join(dir, "b.jsonl");
    await writeFile(
      jsonl,
      '{"price":1,"click":1,"dwell":2,"emb":[0,1]}\n{"price":2,"cli\n[1]\n{"price":3,"click":null}\n',
    );
    const check = await checkData([csv, jsonl], spec, { maxBadRows: 20 });
    expect(check).toMatchObject({ rows: 12, kept: 3, skipped: 9 });
    expect(check.reasons).toEqual({
      'column "price": not a number': 2,
      'column "click": not a binary label': 1,
      'column "emb": not a vector of the spec\'s dim numbers': 1,
      "the row does not have one field per column of the header": 1,
      'column "dwell": out of range for log1p': 1,
      "not valid JSON": 1,
      "expected a JSON object per line": 1,
      'column "click": missing label': 1,
    });
    expect(check.files.map((f) => f.skipped)).toEqual([6, 3]);
    expect(check.examples[0]).toBe(`${csv}:3: column "price": "abc" is not a number`);

    await expect(checkData([csv], spec, { maxBadRows: 0 })).rejects.toThrow(`${csv}:3: column "price"`);
    await expect(checkData([csv], spec, { maxBadRows: 2 })).rejects.toThrow(
      `${csv}:5: column "click": "maybe" is not a binary label (1/0, true/false, yes/no); list the positive values in tasks.click.positive (over the error budget of 2 bad rows)`,
    );
  });

  it("names a missing file, a corrupt one and one without a column; an empty day is an error", async () => {
    const dir = await tempDir();
    const good = await writeCsv(dir, "good.csv", makeRows(5));
    const gone = join(dir, "gone.parquet");
    await expect(checkData([good, gone], spec, { maxBadRows: 0 })).rejects.toThrow(
      `${gone}: no such data file`,
    );

    const badParquet = join(dir, "bad.parquet");
    await writeFile(badParquet, "PAR1 this is not parquet at all PAR1");
    await expect(checkData([badParquet], spec, { maxBadRows: 10 })).rejects.toThrow(
      `${badParquet}: not a readable Parquet file`,
    );
    const truncated = join(dir, "cut.parquet");
    const whole = await readFile(writeParquet(dir, "whole.parquet", makeRows(50)));
    await writeFile(truncated, whole.subarray(0, whole.length - 40));
    await expect(checkData([truncated], spec, { maxBadRows: 10 })).rejects.toThrow(
      `${truncated}: not a readable`,
    );

    const badGzip = join(dir, "bad.csv.gz");
    await writeFile(badGzip, "not gzip at all");
    await expect(checkData([badGzip], spec, { maxBadRows: 10 })).rejects.toThrow(badGzip);
    const badJsonGzip = join(dir, "bad.jsonl.gz");
    await writeFile(badJsonGzip, gzipSync('{"price":1}\n').subarray(0, 12));
    await expect(checkData([badJsonGzip], spec, { maxBadRows: 10 })).rejects.toThrow(
      `${badJsonGzip}: cannot read`,
    );

    const noColumn = join(dir, "nocol.csv");
    await writeFile(noColumn, "price,country,tags,emb,click\n1,us,a,0 1,1\n");
    await expect(checkData([noColumn], spec, { maxBadRows: 10 })).rejects.toThrow(
      `${noColumn}: tasks.dwell.column: no column "dwell"`,
    );

    const empty = await writeCsv(dir, "empty.csv", []);
    const emptyParquet = writeParquet(dir, "empty.parquet", []);
    await expect(checkData([empty, emptyParquet], spec, { maxBadRows: 0, source: "day-1" })).rejects.toThrow(
      /^no rows in day-1$/,
    );
    const allBad = join(dir, "allbad.csv");
    await writeFile(allBad, "price,country,tags,emb,click,dwell\nx,us,a,0 1,1,1\n");
    await expect(checkData([allBad], spec, { maxBadRows: 5, source: "day-2" })).rejects.toThrow(
      'no rows in day-2: all 1 rows were bad (column "price": not a number: 1)',
    );
  });

  it("leaves no partial output behind when the check fails", async () => {
    const dir = await tempDir();
    const good = await writeCsv(dir, "good.csv", makeRows(5));
    const out = join(dir, "rows.jsonl");
    await expect(checkData([good, join(dir, "gone.csv")], spec, { maxBadRows: 0, out })).rejects.toThrow();
    await expect(readFile(out)).rejects.toThrow(/ENOENT/);
  });

  it("reduces checker messages to reasons", () => {
    expect(badRowReason('/d/a.csv:9: column "x": "1,5" is not a number', "/d/a.csv")).toBe(
      'column "x": not a number',
    );
    expect(badRowReason("/d/a.csv:2: not valid JSON", "/d/a.csv")).toBe("not valid JSON");
    expect(
      badRowReason(
        '/d/a.csv:4: column "req": no group id (spec.group): a row of a ranked list needs its list\'s id',
        "/d/a.csv",
      ),
    ).toBe('column "req": no group id');
    expect(
      badRowReason(
        '/d/a.csv:5: column "emb": element 2: 1e+300 is too large (at most 3.40e+38 in magnitude)',
        "/d/a.csv",
      ),
    ).toBe('column "emb": too large for float32');
  });
});

describe("prepareData", () => {
  it("writes the good rows and a JSONL spec the trainer reads as it reads the original", async () => {
    const dir = await tempDir();
    const rows = makeRows(40);
    const csv = await writeCsv(dir, "day.csv", rows);
    const bad = join(dir, "day2.csv");
    await writeFile(bad, `${csvText(rows.slice(0, 2)).trim()}\nnope,us,a,0 1,1,1\n`);
    const work = join(dir, "work");
    const day = await prepareData(dir, spec, { workDir: work, maxBadRows: 1 });
    expect(day.files).toEqual([csv, bad]);
    expect(day.check).toMatchObject({ rows: 43, kept: 42, skipped: 1 });
    expect(day.stats.rows).toBe(42);
    expect(day.statsOnReference).toBeUndefined();

    const trainSpec = parseSpec(JSON.parse(await readFile(day.spec, "utf8")));
    expect(trainSpec.format).toBe("jsonl");
    const converted = await loadDataset(day.data, trainSpec);
    const original = await loadDataset(csv, spec);
    expect(converted.rows.slice(0, 40)).toEqual(original.rows);
    expect([...converted.labels.click!].slice(0, 40)).toEqual([...original.labels.click!]);
    expect([...converted.labels.dwell!].slice(0, 40)).toEqual([...original.labels.dwell!]);
  });

  it("a file appended to while it is read fails the step, naming it: its rows and its digest would differ", async () => {
    const dir = await tempDir();
    const rows = makeRows(40);
    const csv = await writeCsv(dir, "day.csv", rows);
    let appended = false;
    const late = csvText(rows.slice(0, 3)).split("\n").slice(1).join("\n");
    const run = prepareData(dir, spec, {
      workDir: join(dir, "work"),
      maxBadRows: 0,
      onRow: () => {
        if (appended) return;
        appended = true;
        appendFileSync(csv, late);
      },
    });
    await expect(run).rejects.toThrow(DataError);
    await expect(run).rejects.toThrow(`${csv} changed while the run read it (`);
    await expect(run).rejects.toThrow(/ bytes before, \d+ now\); nothing was trained on it/);
    // Left alone, the same file prepares, and unchangedSince passes on what it read.
    const day = await prepareData(dir, spec, { workDir: join(dir, "work2"), maxBadRows: 0 });
    await expect(unchangedSince(day.read)).resolves.toBeUndefined();
    await writeFile(csv, `${csvText(rows)}`);
    await expect(unchangedSince(day.read)).rejects.toThrow(/changed while the run read it/);
  });

  it("gives the day's stats on a reference's bins too", async () => {
    const dir = await tempDir();
    writeParquet(dir, "day.parquet", makeRows(200));
    const reference = (await prepareData(dir, spec, { workDir: join(dir, "w1"), maxBadRows: 0 })).stats;
    const shifted = await tempDir();
    writeParquet(shifted, "day.parquet", makeRows(200, { seed: 9, shift: 30 }));
    const day = await prepareData(shifted, spec, { workDir: join(dir, "w2"), maxBadRows: 0, reference });
    const own = day.stats.features.price;
    const onReference = day.statsOnReference?.features.price;
    expect(own?.kind === "numeric" && onReference?.kind === "numeric").toBe(true);
    if (
      own?.kind !== "numeric" ||
      onReference?.kind !== "numeric" ||
      reference.features.price?.kind !== "numeric"
    )
      return;
    expect(onReference.edges).toEqual(reference.features.price.edges);
    expect(own.edges).not.toEqual(reference.features.price.edges);
  });
});
