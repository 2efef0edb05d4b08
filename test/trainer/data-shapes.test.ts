/**
 * Logs in shapes a simulator never writes: every CSV field quoted as RFC 4180 says reads back as
 * written, whatever the line ending; upper-case .GZ names are gunzipped; a value of the wrong JSON
 * shape, a label spelled like an Object.prototype property, a header naming a spec column twice,
 * an empty numeric cell, a number in hex or an infinity is an error naming the file, line and column, never a silent missing value, 0 or guess.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { numberOf, vectorOf } from "../../shared/encoder/values.ts";
import { parseSpec } from "../../shared/spec.ts";
import { binaryLabel, recordChecker } from "../../trainer/data/check-record.ts";
import { encodeDataset } from "../../trainer/data/encode-dataset.ts";
import { loadDataset } from "../../trainer/data/load-dataset.ts";
import { DataError, type ReadOptions, readRecords, type SourceRecord } from "../../trainer/data/read-rows.ts";
import { badRowReason, checkData } from "../../trainer/pipeline/data.ts";

let dir: string;
let files = 0;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "mtrank-data-shapes-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function file(text: string | Uint8Array, name = `f${files}.csv`): Promise<string> {
  const path = join(dir, `${files++}-${name}`);
  await writeFile(path, text);
  return path;
}

const spec = (format: "csv" | "jsonl", extra: Record<string, unknown> = {}) =>
  parseSpec({
    format,
    features: [
      { name: "x", type: "numeric" },
      { name: "c", type: "categorical" },
      { name: "tags", type: "multi_categorical" },
    ],
    tasks: [{ name: "click", type: "binary", column: "y" }],
    ...extra,
  });

async function records(path: string, options: ReadOptions = spec("csv")): Promise<SourceRecord[]> {
  const out: SourceRecord[] = [];
  for await (const record of readRecords(path, options)) out.push(record);
  return out;
}

/** A field as RFC 4180 writes it: quoted, with its quotes doubled. */
const quote = (field: string) => `"${field.replaceAll('"', '""')}"`;

describe("CSV fields in any shape", () => {
  // Text with the characters CSV gives meaning to, and some it should not.
  const char = fc.constantFrom(",", '"', "\n", "\r", "\r\n", ";", "\t", " ", "\uFEFF", "a", "é", "🙂", "0");
  const field = fc.array(char, { maxLength: 6 }).map((parts) => parts.join(""));

  it("reads back every field written with RFC 4180 quoting, on the line it starts on", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 4 }),
        fc.array(fc.array(field, { minLength: 4, maxLength: 4 }), { minLength: 1, maxLength: 5 }),
        fc.constantFrom("\n", "\r\n", "\r"),
        fc.boolean(),
        async (width, table, eol, bom) => {
          const rows = table.map((row) => row.slice(0, width));
          const names = Array.from({ length: width }, (_, j) => `c${j}`);
          const lines = [names.map(quote).join(","), ...rows.map((row) => row.map(quote).join(","))];
          const text = `${bom ? "\uFEFF" : ""}${lines.join(eol)}${eol}`;
          const read = await records(await file(text), { format: "csv", delimiter: ",", header: true });
          // A one-column row whose field is empty is an empty line, skipped.
          const kept = rows.filter((row) => !(width === 1 && row[0] === ""));
          expect(read.map((r) => r.record)).toEqual(
            kept.map((row) => Object.fromEntries(names.map((name, j) => [name, row[j]]))),
          );
          let line = 2;
          const starts: number[] = [];
          for (const row of rows) {
            if (!(width === 1 && row[0] === "")) starts.push(line);
            // Lines counted by the file's own line break: "\n" (LF and CRLF files) or "\r" (CR-only).
            line += 1 + (row.join("").match(eol === "\r" ? /\r/g : /\n/g)?.length ?? 0);
          }
          expect(read.map((r) => r.line)).toEqual(starts);
        },
      ),
      { numRuns: 200 },
    );
  });

  it("keeps a quoted last field's own \\r, and reads a CR-only file with LF inside quoted fields", async () => {
    const crlf = await file('a,b\n1,"x\r"\n2,"y\r"\r\n3,z\r\n4," \r\r" \r\n5,"w"\r\n');
    expect(
      (await records(crlf, { format: "csv", delimiter: ",", header: true })).map((r) => r.record),
    ).toEqual([
      { a: "1", b: "x\r" },
      { a: "2", b: "y\r" },
      { a: "3", b: "z" },
      { a: "4", b: " \r\r" },
      { a: "5", b: "w" },
    ]);
    const cr = await file('a,b\r1,"x\ny"\r2,"p\r\nq"\r3,4\r');
    expect(await records(cr, { format: "csv", delimiter: ",", header: true })).toEqual([
      { record: { a: "1", b: "x\ny" }, line: 2 },
      { record: { a: "2", b: "p\r\nq" }, line: 3 },
      { record: { a: "3", b: "4" }, line: 5 },
    ]);
  });

  it("gunzips a .GZ file as it does a .gz one, CSV and JSONL", async () => {
    const csv = await file(gzipSync("x,c,tags,y\n1,a,b,1\n"), "DAY.CSV.GZ");
    expect((await records(csv)).map((r) => r.record)).toEqual([{ x: "1", c: "a", tags: "b", y: "1" }]);
    const jsonl = await file(gzipSync('{"x":1,"c":"a","y":1}\n'), "DAY.JSONL.Gz");
    expect((await loadDataset(jsonl, spec("jsonl"))).rows).toEqual([{ x: 1, c: "a", y: 1 }]);
  });

  it("refuses a header that names a column the spec reads twice, at the header's line", async () => {
    const path = await file("\nx,c,tags,y,c\n1,a,b,1,z\n");
    await expect(records(path)).rejects.toThrow(
      new DataError(`${path}: line 2: the header names column "c" twice`),
    );
    await expect(loadDataset(path, spec("csv"))).rejects.toThrow(/line 2: the header names column "c" twice/);
    // A repeated name the spec does not read is no one's business (a blank index column, a join's ids).
    const unread = await file(",x,c,tags,y,,id,id\n0,1,a,b,1,,7,8\n");
    expect((await loadDataset(unread, spec("csv"))).rows).toHaveLength(1);
  });
});

describe("values in the wrong shape", () => {
  it("refuses a binary label spelled like an Object.prototype property", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...Object.getOwnPropertyNames(Object.prototype)),
        fc.constantFrom(
          (s: string) => s,
          (s: string) => s.toUpperCase(),
        ),
        (name, spell) => {
          expect(binaryLabel(spell(name))).toBeNull();
        },
      ),
    );
  });

  it("names a JSON object or array where the spec expects one value, never a silent missing one", async () => {
    const lines = [
      '{"x":1,"c":"a","y":1}',
      '{"x":1,"c":{"os":"ios"},"y":1}',
      '{"x":1,"c":["a"],"y":1}',
      '{"x":1,"c":"a","y":[1]}',
      '{"x":1,"c":"a","tags":{"a":1},"y":1}',
      '{"x":1,"c":"a","tags":["a",["b"]],"y":1}',
      '{"x":1,"c":"a","tags":["a",{"b":1}],"y":1}',
      '{"x":1,"c":null,"tags":["a",null,2,true],"y":true}',
    ];
    const path = await file(lines.join("\n"), "shapes.jsonl");
    const checker = recordChecker(path, spec("jsonl"));
    const outcome = (line: number) => {
      try {
        return checker.check({ record: JSON.parse(lines[line - 1]!), line });
      } catch (error) {
        return (error as Error).message;
      }
    };
    expect(outcome(1)).toEqual([1]);
    expect(outcome(2)).toBe(
      `${path}:2: column "c": {"os":"ios"} is not a category (a string, number or boolean)`,
    );
    expect(outcome(3)).toBe(`${path}:3: column "c": ["a"] is not a category (a string, number or boolean)`);
    expect(outcome(4)).toMatch(`${path}:4: column "y": [1] is not a binary label`);
    expect(outcome(5)).toBe(
      `${path}:5: column "tags": {"a":1} is not a category (a string, number or boolean) or an array of them`,
    );
    expect(outcome(6)).toBe(
      `${path}:6: column "tags": element 1: ["b"] is not a category (a string, number or boolean)`,
    );
    expect(outcome(7)).toBe(
      `${path}:7: column "tags": element 1: {"b":1} is not a category (a string, number or boolean)`,
    );
    expect(outcome(8)).toEqual([1]);
    // The pipeline counts them under one reason each.
    expect(badRowReason(outcome(2) as string, path)).toBe('column "c": not a category');
    expect(badRowReason(outcome(6) as string, path)).toBe('column "tags": not a category');
    const check = await checkData([path], spec("jsonl"), { maxBadRows: 10 });
    expect(check).toMatchObject({ kept: 2, skipped: 6 });
    expect(check.reasons).toEqual({
      'column "c": not a category': 2,
      'column "tags": not a category': 3,
      'column "y": not a binary label': 1,
    });
  });

  it("reads an empty or blank number as an error when the spec does not call it missing", async () => {
    for (const text of ["", " ", "\t"]) {
      expect(numberOf(text, { trim: false, missing: new Set(["NA"]) })).toBeNaN();
      expect(numberOf(text, { trim: true, missing: new Set(["NA"]) })).toBeNaN();
    }
    expect(numberOf("", { trim: true, missing: new Set([""]) })).toBeNull();
    expect(numberOf(" ", { trim: true, missing: new Set([""]) })).toBeNull();
    const path = await file("x,c,tags,y\n1,a,b,1\n,a,b,1\n");
    await expect(loadDataset(path, spec("csv", { missing: ["NA"] }))).rejects.toThrow(
      `${path}:3: column "x": "" is not a number`,
    );
    await expect(loadDataset(path, spec("csv", { missing: ["NA"] }))).rejects.toThrow(DataError);
  });

  it("reads a JSONL key absent from a record as missing, whatever its name", async () => {
    const names = spec("jsonl", {
      features: [
        { name: "valueOf", type: "numeric" },
        { name: "toString", type: "categorical" },
        { name: "hasOwnProperty", type: "vector", dim: 2 },
      ],
    });
    const path = await file(
      '{"y":1}\n{"y":0,"valueOf":2,"toString":"a","hasOwnProperty":[1,2]}\n',
      "names.jsonl",
    );
    const { rows } = await loadDataset(path, names);
    expect(rows.map((row) => Object.keys(row))).toEqual([
      ["y"],
      ["y", "valueOf", "toString", "hasOwnProperty"],
    ]);
    expect(Object.hasOwn(rows[0]!, "valueOf")).toBe(false);
    expect(rows[1]!.valueOf).toBe(2);
    // The pipeline's own JSONL reader, too.
    expect(await checkData([path], names, { maxBadRows: 0 })).toMatchObject({ kept: 2, skipped: 0 });
  });
});

describe("what the first record or the header does not say", () => {
  it("reads a JSONL file whose first record leaves out a label key a later one has", async () => {
    const conditional = spec("jsonl", {
      tasks: [
        { name: "click", type: "binary", column: "y" },
        { name: "buy", type: "binary", column: "bought", given: "click" },
        { name: "dwell", type: "regression", column: "dwell_s", missingLabel: "mask" },
      ],
    });
    // Unclicked rows leave out "bought", and dwell is not yet known on the first one.
    const lines = Array.from({ length: 12 }, (_, i) =>
      JSON.stringify({
        x: i,
        c: `c${i % 3}`,
        y: i % 2,
        ...(i % 2 ? { bought: i % 4 === 1 ? 1 : 0 } : {}),
        ...(i > 0 ? { dwell_s: i * 1.5 } : {}),
      }),
    );
    const { labels } = await loadDataset(await file(lines.join("\n"), "first.jsonl"), conditional);
    expect(Array.from(labels.buy!)).toEqual(
      Array.from({ length: 12 }, (_, i) => (i % 2 ? (i % 4 === 1 ? 1 : 0) : 0)),
    );
    expect(labels.dwell![0]).toBeNaN();
    expect(labels.dwell![1]).toBe(1.5);
  });

  it("refuses a JSON integer id beyond 2^53, which JSON.parse has already rounded into its neighbours", async () => {
    const lines = ['{"x":1,"c":"a","y":1}', '{"x":1,"c":12345678901234567048,"y":1}'];
    const path = await file(lines.join("\n"), "big-ids.jsonl");
    await expect(loadDataset(path, spec("jsonl"))).rejects.toThrow(
      `${path}:2: column "c": 12345678901234567000 is an integer beyond 2^53, which JSON readers round (neighbouring ids read alike): write ids as strings`,
    );
    const bag = await file('{"x":1,"c":"a","tags":["a",9007199254740993],"y":1}\n', "big-tags.jsonl");
    await expect(loadDataset(bag, spec("jsonl"))).rejects.toThrow(
      `${bag}:1: column "tags": element 1: 9007199254740992 is`,
    );
    // A safe integer, and a large number in a numeric column, read as before.
    const fine = await file('{"x":1e300,"c":9007199254740991,"y":1}\n', "safe.jsonl");
    expect((await loadDataset(fine, spec("jsonl"))).rows).toHaveLength(1);
  });

  it("trims the header's names as it trims values, and names a column that differs only in case or form", async () => {
    const spaced = await file("x , c,tags ,y\n1,a,b,1\n2,b,c,0\n");
    expect((await loadDataset(spaced, spec("csv"))).rows[1]).toMatchObject({ x: "2", c: "b", tags: "c" });
    // "é" as e + a combining accent in the header, as one code point in the spec.
    const decomposed = await file("x,c,tags,y,Cafe\u0301\n1,a,b,1,2\n");
    const named = spec("csv", {
      features: [
        { name: "x", type: "numeric" },
        { name: "café", type: "numeric" },
      ],
    });
    await expect(loadDataset(decomposed, named)).rejects.toThrow(
      `${decomposed}: features.café: no column "café" (the header has "Cafe\u0301")`,
    );
  });
});

describe("text that is not UTF-8", () => {
  it("names a Latin-1 byte by its line, and a UTF-16 file as such, in CSV, JSONL and the pipeline's reader", async () => {
    // "café" in Latin-1 on the third line: decoding would have read "caf\uFFFD" without a word.
    const latin1 = Buffer.concat([
      Buffer.from("x,c,tags,y\n1,a,b,1\n2,caf"),
      Buffer.from([0xe9]),
      Buffer.from(",b,0\n"),
    ]);
    const csv = await file(latin1, "latin1.csv");
    const message = `${csv}:3: not UTF-8 (byte 0xE9 at byte 24): save the file as UTF-8 (a Latin-1 or Windows-1252 export?)`;
    await expect(loadDataset(csv, spec("csv"))).rejects.toThrow(message);
    await expect(checkData([csv], spec("csv"), { maxBadRows: 10 })).rejects.toThrow(message);
    const jsonl = await file(
      Buffer.concat([
        Buffer.from('{"x":1,"c":"a","y":1}\n{"x":1,"c":"caf'),
        Buffer.from([0xe9]),
        Buffer.from('","y":1}\n'),
      ]),
      "latin1.jsonl",
    );
    await expect(loadDataset(jsonl, spec("jsonl"))).rejects.toThrow(`${jsonl}:2: not UTF-8 (byte 0xE9`);
    await expect(checkData([jsonl], spec("jsonl"), { maxBadRows: 10 })).rejects.toThrow(
      `${jsonl}:2: not UTF-8`,
    );
    const utf16 = await file(Buffer.from("\uFEFFx,c,tags,y\n1,a,b,1\n", "utf16le"), "utf16.csv");
    await expect(loadDataset(utf16, spec("csv"))).rejects.toThrow(
      `${utf16}: the file is UTF-16 (it starts with a byte-order mark): save it as UTF-8`,
    );
    // Multi-byte characters cut anywhere by the reads still read, gzipped or not.
    const text = `x,c,tags,y\n${Array.from({ length: 3000 }, (_, i) => `${i},é🙂${i % 7},日本,${i % 2}`).join("\n")}\n`;
    for (const path of [await file(text, "wide.csv"), await file(gzipSync(text), "wide.csv.gz")]) {
      const { rows } = await loadDataset(path, spec("csv"));
      expect(rows).toHaveLength(3000);
      expect(rows[2999]!.c).toBe("é🙂3");
    }
  });
});

describe("numbers in other spellings", () => {
  const rules = (trim: boolean) => ({ trim, missing: new Set(["", "NA"]) });

  it("refuses hex, binary and octal literals and infinities as it refuses any other non-number", async () => {
    const refused = ["0x10", "0X1f", "0b11", "0B1", "0o7", "0O17", " 0x10 ", "\t0b1"];
    for (const text of [...refused, "Infinity", "-Infinity", "+Infinity", "1e999", "NaN", "1 2", "1,5"])
      for (const trim of [true, false])
        expect(numberOf(text, rules(trim)), `${JSON.stringify(text)}, trim ${trim}`).toBeNaN();
    // Decimals, exponents and signs read as they always have; whitespace around a number is no
    // mistake about which number it is, so it reads even with "trim": false.
    const kept: [string, number | null][] = [
      ["12", 12],
      ["-3.5", -3.5],
      ["+4", 4],
      ["1e-3", 0.001],
      ["2E+2", 200],
      [".5", 0.5],
      ["5.", 5],
      ["-0", -0],
      ["007", 7],
      ["0", 0],
      ["0.25", 0.25],
      ["0e5", 0],
      [" 12 ", 12],
      ["NA", null],
      ["", null],
    ];
    for (const [text, x] of kept)
      for (const trim of [true, false]) expect(numberOf(text, rules(trim)), JSON.stringify(text)).toBe(x);
    for (const text of ["0x1", "0b1", "0o1", "0x0", "Infinity"]) expect(binaryLabel(text), text).toBeNull();

    const path = await file("x,c,tags,y\n1,a,b,1\n0x10,a,b,1\n");
    await expect(loadDataset(path, spec("csv"))).rejects.toThrow(
      `${path}:3: column "x": "0x10" is not a number`,
    );
    const other = parseSpec({
      format: "jsonl",
      features: [{ name: "v", type: "vector", dim: 2 }],
      tasks: [
        { name: "dwell", type: "regression", column: "d" },
        { name: "click", type: "binary", column: "y" },
      ],
    });
    const lines = [
      '{"v":"1 2","d":"3","y":1}',
      '{"v":"1 0o7","d":"3","y":1}',
      '{"v":"1 2","d":"0b11","y":1}',
      '{"v":"1 2","d":"3","y":"0x1"}',
      '{"v":"1 2","d":"-Infinity","y":0}',
    ];
    const jsonl = await file(lines.join("\n"), "radix.jsonl");
    const checker = recordChecker(jsonl, other);
    const outcome = (line: number) => {
      try {
        return checker.check({ record: JSON.parse(lines[line - 1]!), line });
      } catch (error) {
        return (error as Error).message;
      }
    };
    expect(outcome(1)).toEqual([3, 1]);
    expect(outcome(2)).toBe(`${jsonl}:2: column "v": element 1: "0o7" is not a finite number`);
    expect(outcome(3)).toBe(`${jsonl}:3: column "d": "0b11" is not a number`);
    expect(outcome(4)).toMatch(`${jsonl}:4: column "y": "0x1" is not a binary label`);
    expect(outcome(5)).toBe(`${jsonl}:5: column "d": "-Infinity" is not a number`);
  });

  it("names a NaN or an infinity by its value, not as JSON's null", () => {
    const checker = recordChecker("p.parquet", spec("csv"));
    const outcome = (record: Record<string, unknown>) => {
      try {
        return checker.check({ record: { c: "a", tags: "b", y: 1, ...record }, line: 2 });
      } catch (error) {
        return (error as Error).message;
      }
    };
    expect(outcome({ x: Number.NaN })).toBe('p.parquet:2: column "x": NaN is not a number');
    expect(outcome({ x: Number.NEGATIVE_INFINITY })).toBe(
      'p.parquet:2: column "x": -Infinity is not a number',
    );
    expect(outcome({ x: 1, y: Number.NaN })).toMatch(/^p\.parquet:2: column "y": NaN is not a binary label/);
    expect(() => vectorOf([1, Number.NaN], 2, " ", rules(true))).toThrow(
      "element 1: NaN is not a finite number",
    );
  });
});

describe("a binary task's classes", () => {
  it("says when the split, not the file, left the training part with one class, with both parts' counts", async () => {
    // Seed 42 puts row 2 (the positive) in validation.
    const path = await file("x,c,tags,y\n1,a,b,0\n2,a,b,1\n");
    await expect(encodeDataset(path, spec("csv"), { validFraction: 0.2, seed: 42 })).rejects.toThrow(
      new DataError(
        `${path}: task "click" (column "y"): the split left the training part with one class ` +
          "(every training label is 0): training part 1 labelled row, 0 positive; " +
          "validation part 1 labelled row, 1 positive",
      ),
    );
  });
});
