import type { ReadStream } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { DataError, type ReadOptions, readRecords, type SourceRecord } from "../../trainer/data/read-rows.ts";

// Every file stream the reader opens, so a test can ask how far it has read (bytesRead).
const streams = vi.hoisted(() => [] as ReadStream[]);
vi.mock("node:fs", async (importOriginal) => {
  const fs = await importOriginal<typeof import("node:fs")>();
  return {
    ...fs,
    createReadStream: (...args: Parameters<typeof fs.createReadStream>) => {
      const stream = fs.createReadStream(...args);
      streams.push(stream);
      return stream;
    },
  };
});

const CSV: ReadOptions = { format: "csv", delimiter: ",", header: true };
const RAGGED = "the row does not have one field per column of the header";

let dir: string;
let files = 0;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "mtrank-read-rows-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function file(text: string | Uint8Array, name = `f${files++}.csv`): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

async function read(text: string | Uint8Array, spec: Partial<ReadOptions> = {}): Promise<SourceRecord[]> {
  return all(await file(text), spec);
}

async function all(path: string, spec: Partial<ReadOptions> = {}): Promise<SourceRecord[]> {
  const out: SourceRecord[] = [];
  for await (const record of readRecords(path, { ...CSV, ...spec })) out.push(record);
  return out;
}

/** The error reading a file ends with, and the records that came before it. */
async function failure(path: string): Promise<{ error: unknown; before: SourceRecord[] }> {
  const before: SourceRecord[] = [];
  try {
    for await (const record of readRecords(path, CSV)) before.push(record);
  } catch (error) {
    return { error, before };
  }
  throw new Error(`${path} was read without an error`);
}

describe("readRecords (CSV)", () => {
  it("keys each record by the header, with the values as read: no trimming, no casting", async () => {
    const rows = await read('id,x,name\n007, 1.50 ,"a, b"\n1e3,,x""y\n');
    expect(rows).toEqual([
      { record: { id: "007", x: " 1.50 ", name: "a, b" }, line: 2 },
      { record: { id: "1e3", x: "", name: 'x""y' }, line: 3 },
    ]);
    for (const { record } of rows)
      for (const value of Object.values(record)) expect(typeof value).toBe("string");
  });

  it("names the fields by spec.columns when the file has no header row", async () => {
    const rows = await read("1,2\n3,4\n", { header: false, columns: ["x", "y"] });
    expect(rows).toEqual([
      { record: { x: "1", y: "2" }, line: 1 },
      { record: { x: "3", y: "4" }, line: 2 },
    ]);
  });

  it("gives the line each record starts on, counting the line breaks inside quoted fields", async () => {
    const text = [
      "a,b", // 1
      '"one', // 2: a field over three lines
      "two",
      'three",1',
      "2,3", // 5
      '"p""q","r,s"', // 6
      '7,"x', // 7: the line break is inside the second field
      'y"',
      "8,9", // 9
    ].join("\n");
    const rows = await read(`${text}\n`);
    expect(rows.map((r) => r.line)).toEqual([2, 5, 6, 7, 9]);
    expect(rows.map((r) => r.record)).toEqual([
      { a: "one\ntwo\nthree", b: "1" },
      { a: "2", b: "3" },
      { a: 'p"q', b: "r,s" },
      { a: "7", b: "x\ny" },
      { a: "8", b: "9" },
    ]);
  });

  it("skips empty lines but counts them, and makes no record of a trailing line break", async () => {
    const rows = await read("\na,b\n\n1,2\n\n\n3,4\n\n");
    expect(rows).toEqual([
      { record: { a: "1", b: "2" }, line: 4 },
      { record: { a: "3", b: "4" }, line: 7 },
    ]);
    expect(await read("a,b\n1,2")).toEqual([{ record: { a: "1", b: "2" }, line: 2 }]);
    expect(await read("a,b\n")).toEqual([]);
    expect(await read("")).toEqual([]);
  });

  it("reads CRLF files without a \\r in the last field, and keeps CRLF inside a quoted field", async () => {
    const rows = await read('a,b\r\n1,2\r\n\r\n3,"x\r\ny"\r\n4,"5"\r\n');
    expect(rows).toEqual([
      { record: { a: "1", b: "2" }, line: 2 },
      { record: { a: "3", b: "x\r\ny" }, line: 4 },
      { record: { a: "4", b: "5" }, line: 6 },
    ]);
    // A file whose lines end both ways (appended to by two tools).
    expect((await read("a,b\n1,2\r\n3,4\n")).map((r) => r.record)).toEqual([
      { a: "1", b: "2" },
      { a: "3", b: "4" },
    ]);
  });

  it("reads a file whose lines end in \\r alone", async () => {
    expect(await read("a,b\r1,2\r\r3,4\r")).toEqual([
      { record: { a: "1", b: "2" }, line: 2 },
      { record: { a: "3", b: "4" }, line: 4 },
    ]);
  });

  it("flags each row with too few or too many fields once, with the fields it has", async () => {
    const rows = await read("a,b,c\n1,2\n3,4,5\n6,7,8,9\n10,11\n12,13,14\n");
    expect(rows).toEqual([
      { record: { a: "1", b: "2" }, line: 2, problem: RAGGED },
      { record: { a: "3", b: "4", c: "5" }, line: 3 },
      { record: { a: "6", b: "7", c: "8" }, line: 4, problem: RAGGED },
      { record: { a: "10", b: "11" }, line: 5, problem: RAGGED },
      { record: { a: "12", b: "13", c: "14" }, line: 6 },
    ]);
    expect(rows.filter((r) => "problem" in r)).toHaveLength(3);
    // Without a header, spec.columns is what a row is measured against.
    const headless = await read("1,2,3\n4\n5,6\n", { header: false, columns: ["x", "y"] });
    expect(headless).toEqual([
      { record: { x: "1", y: "2" }, line: 1, problem: RAGGED },
      { record: { x: "4" }, line: 2, problem: RAGGED },
      { record: { x: "5", y: "6" }, line: 3 },
    ]);
  });

  it("strips a UTF-8 byte-order mark from the first column's name, also before a quote", async () => {
    expect(await read("\uFEFFid,x\n1,2\n")).toEqual([{ record: { id: "1", x: "2" }, line: 2 }]);
    expect(await read('\uFEFF"id",x\n1,2\n')).toEqual([{ record: { id: "1", x: "2" }, line: 2 }]);
    // In the middle of a value it is data.
    expect((await read("a,b\n1,x\uFEFF\n"))[0]!.record).toEqual({ a: "1", b: "x\uFEFF" });
  });

  it("splits on spec.delimiter only, never a guessed one", async () => {
    expect((await read("a;b\n1,5;2\n", { delimiter: ";" }))[0]!.record).toEqual({ a: "1,5", b: "2" });
    expect((await read("a\tb\n1\t2\n", { delimiter: "\t" }))[0]!.record).toEqual({ a: "1", b: "2" });
    // Semicolons all over, but the spec says ",": one column.
    const rows = await read("a;b;c\n1;2;3\n4;5;6\n7;8;9\n");
    expect(rows.map((r) => r.record)).toEqual([
      { "a;b;c": "1;2;3" },
      { "a;b;c": "4;5;6" },
      { "a;b;c": "7;8;9" },
    ]);
    await expect(read("a,b\n", { delimiter: "\n" })).rejects.toThrow(DataError);
  });

  it("takes any column name as a key, nothing more", async () => {
    const header = ["__proto__", "constructor", 'q"+globalThis.hacked+"', "back\\slash", '"multi\nline"'];
    const rows = await read(`${header.join(",")}\n1,2,3,4,5\n`);
    const record = rows[0]!.record;
    expect(Object.getPrototypeOf(record)).toBe(Object.prototype);
    expect(Object.entries(record)).toEqual([
      ["__proto__", "1"],
      ["constructor", "2"],
      ['q"+globalThis.hacked+"', "3"],
      ["back\\slash", "4"],
      ["multi\nline", "5"],
    ]);
    expect("hacked" in globalThis).toBe(false);
    // A name given twice keeps the later field.
    expect((await read("a,a,b\n1,2,3\n"))[0]!.record).toEqual({ a: "2", b: "3" });
  });

  it("decodes multi-byte characters that the file's chunks split", async () => {
    const values = ["é", "日本", "🙂", "naïve café", "👩‍👩‍👧", "ß"];
    const lines = ["i,v,w"];
    // Rows of varying length, so the 64 KiB (and, gzipped, 16 KiB) chunks end inside characters.
    for (let i = 0; i < 12_000; i++)
      lines.push(`${i},${values[i % values.length]!.repeat(1 + (i % 5))},${"x".repeat(i % 7)}`);
    const text = `${lines.join("\n")}\n`;
    expect(Buffer.byteLength(text)).toBeGreaterThan(256 * 1024);
    for (const path of [await file(text), await file(gzipSync(text), "multibyte.csv.gz")]) {
      const rows = await all(path);
      expect(rows).toHaveLength(12_000);
      rows.forEach(({ record, line }, i) => {
        expect(line).toBe(i + 2);
        expect(record).toEqual({
          i: String(i),
          v: values[i % values.length]!.repeat(1 + (i % 5)),
          w: "x".repeat(i % 7),
        });
      });
    }
  });

  it("reads a quoted field that spans many chunks", async () => {
    const long = "word, and a line\n".repeat(200_000); // 3.4 MB
    const rows = await read(`a,b\n1,"${long}"\n2,3\n`);
    expect(rows).toHaveLength(2);
    expect(rows[0]).toEqual({ record: { a: "1", b: long }, line: 2 });
    expect(rows[1]).toEqual({ record: { a: "2", b: "3" }, line: 200_003 });
  });

  it("reads .gz files", async () => {
    const path = await file(gzipSync('a,b\n1,"x\ny"\n\n2,3\n'), "small.csv.gz");
    expect(await all(path)).toEqual([
      { record: { a: "1", b: "x\ny" }, line: 2 },
      { record: { a: "2", b: "3" }, line: 5 },
    ]);
  });

  it("turns a missing file or a corrupt .gz into a one-line DataError naming the file", async () => {
    const missing = await failure(join(dir, "nope.csv"));
    expect(missing.error).toBeInstanceOf(DataError);
    expect((missing.error as Error).message).toMatch(/nope\.csv: ENOENT/);
    const corrupt = await failure(await file("not gzip at all", "bad.csv.gz"));
    expect(corrupt.error).toBeInstanceOf(DataError);
    expect((corrupt.error as Error).message).toMatch(/bad\.csv\.gz: incorrect header check$/);
    expect((corrupt.error as Error).message).not.toContain("\n");
  });

  it("stops at a malformed quote with a DataError naming the file and the line, after the rows before it", async () => {
    const path = await file('a,b\n1,2\n"x\ny",3\n4,"five"six\n7,8\n');
    const { error, before } = await failure(path);
    expect(before.map((r) => r.line)).toEqual([2, 3]);
    expect(error).toBeInstanceOf(DataError);
    expect((error as Error).message).toBe(
      `${path}: line 5: a quote in a quoted field is neither doubled nor followed by the delimiter or the end of the line`,
    );
  });

  it("takes no chunk boundary for a malformed quote", async () => {
    // The first 64 KiB read ends just after `"ab" `: without the "," that follows, that looks like
    // junk after a closing quote, but papaparse accepts spaces there.
    const head = `a,b\n1111,2\n${"1,2\n".repeat(16_380)}`;
    const text = `${head}"ab" ,x\n3,4\n`;
    expect(text.indexOf(',x"')).toBe(-1);
    expect(head.length + 5).toBe(64 * 1024);
    const rows = await read(text);
    expect(rows).toHaveLength(16_383);
    expect(rows.at(-2)).toEqual({ record: { a: "ab", b: "x" }, line: 16_383 });
    expect(rows.at(-1)).toEqual({ record: { a: "3", b: "4" }, line: 16_384 });
  });

  it("stops at a quote left open, naming the line its record starts on", async () => {
    const path = await file('a,b\n1,2\n3,"four\n5,6\n');
    const { error, before } = await failure(path);
    expect(before.map((r) => r.record)).toEqual([{ a: "1", b: "2" }]);
    expect(error).toBeInstanceOf(DataError);
    expect((error as Error).message).toBe(
      `${path}: line 3: a quoted field is not closed before the end of the file`,
    );
  });

  it("gives up on a record longer than 64 MiB rather than hold the rest of the log", async () => {
    const path = await file(`a,b\n1,2\n3,"${"x".repeat(65 * 1024 * 1024)}\n4,5\n`);
    const { error, before } = await failure(path);
    expect(before).toHaveLength(1);
    expect((error as Error).message).toBe(
      `${path}: line 3: a record longer than 64 MiB; is a quote left open?`,
    );
  });

  it("reads no further ahead than the consumer asks, and closes the file when it stops", async () => {
    const row = `${"abcdefgh,".repeat(9)}z\n`;
    const path = await file(`${"c,".repeat(9)}z\n${row.repeat(200_000)}`); // 20 MB
    const records = readRecords(path, CSV);
    for (let i = 0; i < 10; i++) await records.next();
    const stream = streams.at(-1)!;
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(stream.bytesRead).toBeLessThan(1024 * 1024);
    await records.return(undefined);
    // The reader's stages (gunzip, the UTF-8 check) pass the close back to the file within a tick.
    await new Promise((resolve) => setImmediate(resolve));
    expect(stream.destroyed).toBe(true);
  });
});
