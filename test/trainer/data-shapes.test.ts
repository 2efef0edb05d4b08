/**
 * Logs in shapes a simulator never writes: every CSV field quoted as RFC 4180 says reads back as
 * written; upper-case .GZ names are gunzipped; a value of the wrong JSON shape, a label spelled
 * like an Object.prototype property, a header naming a spec column twice or an empty numeric cell
 * is an error naming the file, line and column, never a silent missing value or 0.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { numberOf } from "../../shared/encoder/values.ts";
import { parseSpec } from "../../shared/spec.ts";
import { binaryLabel, recordChecker } from "../../trainer/data/check-record.ts";
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
        fc.constantFrom("\n", "\r\n"),
        fc.boolean(),
        async (width, table, eol, bom) => {
          // Left out: a last field ending in "\r". The reader strips a "\r" that ends a row's last
          // field (the CR of a CRLF line) without knowing whether the field was quoted, so a quoted
          // one loses its own (a known limit; with "trim", the default, it goes anyway).
          const rows = table
            .map((row) => row.slice(0, width))
            .map((row) => {
              const last = row.length - 1;
              row[last] = row[last]!.replace(/\r+$/, "");
              return row;
            });
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
            // Lines as an editor counts them: a "\n" inside a field starts one, a lone "\r" does not.
            line += 1 + (row.join("").match(/\n/g)?.length ?? 0);
          }
          expect(read.map((r) => r.line)).toEqual(starts);
        },
      ),
      { numRuns: 200 },
    );
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
        { name: "constructor", type: "numeric" },
        { name: "toString", type: "categorical" },
        { name: "__proto__", type: "vector", dim: 2 },
      ],
    });
    const path = await file(
      '{"y":1}\n{"y":0,"constructor":2,"toString":"a","__proto__":[1,2]}\n',
      "names.jsonl",
    );
    const { rows } = await loadDataset(path, names);
    expect(rows.map((row) => Object.keys(row))).toEqual([
      ["y"],
      ["y", "constructor", "toString", "__proto__"],
    ]);
    expect(rows[0]!.constructor).toBeUndefined();
    expect(rows[1]!.constructor).toBe(2);
    // The pipeline's own JSONL reader, too.
    expect(await checkData([path], names, { maxBadRows: 0 })).toMatchObject({ kept: 2, skipped: 0 });
  });
});
