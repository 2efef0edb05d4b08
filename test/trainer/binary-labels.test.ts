/**
 * Reading binary labels as exported files spell them: numbers in any form, true/false and yes/no
 * in any case; anything else, and a training split with one class, is an error that says what to
 * set, never a silent 0. A byte-order mark does not stick to the first column.
 */
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseSpec } from "../../shared/spec.ts";
import { binaryLabel } from "../../trainer/data/check-record.ts";
import { encodeDataset } from "../../trainer/data/encode-dataset.ts";
import { loadDataset } from "../../trainer/data/load-dataset.ts";

async function file(name: string, text: string): Promise<string> {
  const path = join(await mkdtemp(join(tmpdir(), "mtrank-labels-")), name);
  await writeFile(path, text);
  return path;
}

const spec = (format: "csv" | "jsonl", positive?: string[]) =>
  parseSpec({
    format,
    features: [{ name: "x", type: "numeric" }],
    tasks: [{ name: "click", type: "binary", column: "y", ...(positive ? { positive } : {}) }],
  });

describe("binaryLabel", () => {
  it("reads 1/0 in any numeric spelling, -1 as 0, and true/false, yes/no, t/f, y/n in any case", () => {
    for (const one of ["1", "1.0", "1.00", "1e0", "true", "TRUE", "True", "yes", "Yes", "t", "Y"])
      expect(binaryLabel(one), one).toBe(1);
    for (const zero of ["0", "0.0", "-0", "-1", "-1.0", "false", "FALSE", "no", "No", "f", "n"])
      expect(binaryLabel(zero), zero).toBe(0);
  });

  it("refuses any other value", () => {
    for (const bad of ["2", "0.5", ">50K", "clicked", "", " ", "NaN", "Infinity"])
      expect(binaryLabel(bad), bad).toBeNull();
    fc.assert(
      fc.property(fc.double({ noNaN: true }), (x) => {
        const y = binaryLabel(String(x));
        expect(y).toBe(x === 1 ? 1 : x === 0 || x === -1 ? 0 : null);
      }),
    );
  });
});

describe("loading", () => {
  it("reads a pandas-style float label column and a JSON boolean one", async () => {
    const csv = await file("f.csv", "x,y\n1,1.0\n2,0.0\n3,1.0\n");
    expect([...(await loadDataset(csv, spec("csv"))).labels.click!]).toEqual([1, 0, 1]);
    const jsonl = await file("b.jsonl", '{"x":1,"y":true}\n{"x":2,"y":false}\n{"x":3,"y":1}\n');
    expect([...(await loadDataset(jsonl, spec("jsonl"))).labels.click!]).toEqual([1, 0, 1]);
  });

  it("names the file, line and column of a label it cannot read, and the field to set", async () => {
    const path = await file("w.csv", "x,y\n1,<=50K\n2,>50K\n");
    await expect(loadDataset(path, spec("csv"))).rejects.toThrow(
      /w\.csv:2: column "y": "<=50K" is not a binary label \(1\/0, true\/false, yes\/no\); list the positive values in tasks\.click\.positive$/,
    );
    // With the positive values named, the same file reads.
    expect([...(await loadDataset(path, spec("csv", [">50K"]))).labels.click!]).toEqual([0, 1]);
  });

  it("refuses a training split with one class, naming the positive values it looked for", async () => {
    const rows = Array.from({ length: 50 }, (_, i) => `${i},${i % 4 === 0 ? "Yes" : "No"}`);
    const path = await file("p.csv", `x,y\n${rows.join("\n")}\n`);
    await expect(encodeDataset(path, spec("csv", ["1"]), { validFraction: 0.2, seed: 1 })).rejects.toThrow(
      /p\.csv: task "click" \(column "y"\): every training label is 0; positive values: "1"/,
    );
    const data = await encodeDataset(path, spec("csv"), { validFraction: 0.2, seed: 1 });
    expect(data.train.labels.click!.reduce((s, y) => s + y, 0)).toBeGreaterThan(0);
  });

  it("strips a byte-order mark before the header (CSV) and the first record (JSONL)", async () => {
    const csv = await file("bom.csv", "\uFEFFx,y\n1,1\n2,0\n");
    expect((await loadDataset(csv, spec("csv"))).rows[0]).toEqual({ x: "1", y: "1" });
    const jsonl = await file("bom.jsonl", '\uFEFF{"x":1,"y":1}\n{"x":2,"y":0}\n');
    expect([...(await loadDataset(jsonl, spec("jsonl"))).labels.click!]).toEqual([1, 0]);
  });
});
