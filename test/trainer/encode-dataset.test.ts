/** The trainer's streaming loader: splits, error budget, and agreement with the in-memory path. */
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { compileEncoder } from "../../shared/encoder/encode.ts";
import { fitEncoder } from "../../shared/encoder/fit.ts";
import { parseSpec } from "../../shared/spec.ts";
import { encodeDataset } from "../../trainer/data/encode-dataset.ts";
import { loadDataset } from "../../trainer/data/load-dataset.ts";
import { splitRows } from "../../trainer/data/split.ts";

const features = [
  { name: "x", type: "numeric" },
  { name: "c", type: "categorical" },
] as const;
const tasks = [{ name: "click", type: "binary", column: "y" }] as const;

async function file(name: string, text: string | Uint8Array): Promise<string> {
  const path = join(await mkdtemp(join(tmpdir(), "mtrank-encode-")), name);
  await writeFile(path, text);
  return path;
}

/** n rows: request r{i/5}, x = i, c cycles a..e, y = i % 3 == 0, t = day i. */
function csv(n: number, bad: Record<number, string> = {}): string {
  const lines = ["req,x,c,y,t"];
  for (let i = 0; i < n; i++)
    lines.push(
      bad[i] ??
        `r${Math.floor(i / 5)},${i},${"abcde"[i % 5]},${i % 3 === 0 ? 1 : 0},2026-01-${String(1 + (i % 28)).padStart(2, "0")}`,
    );
  return `${lines.join("\n")}\n`;
}

describe("encodeDataset", () => {
  it("gives the same encoder, inputs and labels as fitting and encoding the rows in memory", async () => {
    const spec = parseSpec({ format: "csv", features, tasks });
    const path = await file("a.csv.gz", gzipSync(csv(400)));
    const streamed = await encodeDataset(path, spec, { validFraction: 0.2, seed: 3 });
    const data = await loadDataset(path, spec);
    const split = splitRows(data.rows.length, null, 0.2, 3);
    const state = fitEncoder(
      spec,
      split.train.map((i) => data.rows[i]!),
    );
    expect(streamed.encoder).toEqual(state);
    const encoder = compileEncoder(state);
    const valid = encoder.encodeRows(split.valid.map((i) => data.rows[i]!));
    expect(streamed.valid.rows).toBe(split.valid.length);
    expect(streamed.valid.dense).toEqual(valid.dense);
    expect(streamed.valid.ids).toEqual(valid.ids);
    expect([...streamed.valid.labels.click!]).toEqual(split.valid.map((i) => data.labels.click![i]!));
    expect(streamed.counts).toEqual({
      read: 400,
      skipped: 0,
      train: split.train.length,
      valid: split.valid.length,
    });
    expect(streamed.split).toBe("random");
  });

  it("names numeric features without variation in training, and counts bag values past maxValues", async () => {
    const spec = parseSpec({
      format: "csv",
      features: [
        { name: "x", type: "numeric" },
        { name: "k", type: "numeric" },
        { name: "none", type: "numeric" },
        { name: "tags", type: "multi_categorical", maxValues: 2 },
      ],
      tasks,
    });
    const lines = ["x,k,none,tags,y"];
    for (let i = 0; i < 200; i++) lines.push(`${i},7,,a|b|c,${i % 2}`);
    const data = await encodeDataset(await file("k.csv", `${lines.join("\n")}\n`), spec, {
      validFraction: 0.2,
      seed: 1,
    });
    expect(data.constant).toEqual(["k (one value, 7)", "none (no values)"]);
    expect(data.dropped).toEqual({ tags: 200 });
  });

  it("keeps every group on one side of a group split", async () => {
    const spec = parseSpec({ format: "csv", group: "req", features, tasks });
    const streamed = await encodeDataset(await file("g.csv", csv(500)), spec, {
      validFraction: 0.3,
      seed: 1,
    });
    expect(streamed.split).toBe("group");
    const trainGroups = new Set(streamed.train.groups);
    const validGroups = new Set(streamed.valid.groups);
    expect(validGroups.size).toBeGreaterThan(10);
    for (const g of validGroups) expect(trainGroups.has(g)).toBe(false);
    expect(streamed.train.rows + streamed.valid.rows).toBe(500);
  });

  it("validates on the latest rows of a time split, and fits the encoder on the earlier ones only", async () => {
    const spec = parseSpec({ format: "csv", features, tasks });
    const streamed = await encodeDataset(await file("t.csv", csv(280)), spec, {
      validFraction: 0.25,
      seed: 1,
      timeColumn: "t",
    });
    expect(streamed.split).toBe("time");
    // Days 1..28, 10 rows each: the cut is day 22, so days 22..28 (70 rows) validate.
    expect(streamed.valid.rows).toBe(70);
    expect(streamed.train.rows).toBe(210);
    // x = i and day = 1 + i % 28: the encoder's mean of x is over the days before the cut only.
    const x = streamed.encoder.features.find((f) => f.name === "x");
    expect(x?.kind === "numeric" && x.mean).toBeCloseTo(
      average(Array.from({ length: 280 }, (_, i) => i).filter((i) => 1 + (i % 28) < 22)),
      9,
    );
  });

  it("names the file, line and column of a bad time value", async () => {
    const spec = parseSpec({ format: "csv", features, tasks });
    const path = await file("bt.csv", csv(10, { 4: "r0,4,a,0,yesterday" }));
    await expect(encodeDataset(path, spec, { validFraction: 0.2, seed: 1, timeColumn: "t" })).rejects.toThrow(
      /bt\.csv:6: column "t": "yesterday" is not a time/,
    );
    await expect(
      encodeDataset(path, spec, { validFraction: 0.2, seed: 1, timeColumn: "when" }),
    ).rejects.toThrow(/--time-column: no column "when"/);
    // A hex literal is no time (Number() reads "0x10" as 16).
    const hex = await file("hex.csv", csv(10, { 4: "r0,4,a,0,0x10" }));
    await expect(encodeDataset(hex, spec, { validFraction: 0.2, seed: 1, timeColumn: "t" })).rejects.toThrow(
      /hex\.csv:6: column "t": "0x10" is not a time/,
    );
    // Unix seconds among ISO dates would sort as 1970: one form per file, whatever the budget.
    const mixed = await file("mixed.csv", csv(10, { 4: "r0,4,a,0,1767225600" }));
    await expect(
      encodeDataset(mixed, spec, { validFraction: 0.2, seed: 1, timeColumn: "t" }, { maxBadRows: 5 }),
    ).rejects.toThrow(
      /mixed\.csv:6: column "t": "1767225600" is a number, and line 2 holds a date: write every time one way/,
    );
  });

  it("stops at the first bad row by default, naming file, line and column", async () => {
    const spec = parseSpec({ format: "csv", features, tasks });
    const path = await file("b.csv", csv(50, { 7: "r1,seven,a,1,2026-01-01" }));
    await expect(encodeDataset(path, spec, { validFraction: 0.2, seed: 1 })).rejects.toThrow(
      /b\.csv:9: column "x": "seven" is not a number/,
    );
  });

  it("counts a row with too few or too many fields as a bad row, within the budget", async () => {
    const spec = parseSpec({ format: "csv", features, tasks });
    const bad = { 5: "r1,5,a", 12: "r2,12,c,1,2026-01-01,extra" };
    const path = await file("r.csv", csv(40, bad));
    await expect(encodeDataset(path, spec, { validFraction: 0.2, seed: 1 })).rejects.toThrow(
      /\/r\.csv:7: the row does not have one field per column of the header$/,
    );
    const streamed = await encodeDataset(path, spec, { validFraction: 0.2, seed: 1 }, { maxBadRows: 2 });
    expect(streamed.counts.skipped).toBe(2);
    expect(streamed.train.rows + streamed.valid.rows).toBe(38);
    expect(streamed.skipped[1]).toMatch(
      /\/r\.csv:14: the row does not have one field per column of the header$/,
    );
  });

  it("skips and counts bad rows within the error budget, and stops past it", async () => {
    const spec = parseSpec({ format: "csv", features, tasks });
    const bad = { 3: "r0,three,a,1,2026-01-01", 10: "r2,10,b,,2026-01-01", 20: "r4,x20,c,0,2026-01-01" };
    const path = await file("s.csv", csv(60, bad));
    const streamed = await encodeDataset(path, spec, { validFraction: 0.2, seed: 1 }, { maxBadRows: 3 });
    expect(streamed.counts.read).toBe(60);
    expect(streamed.counts.skipped).toBe(3);
    expect(streamed.train.rows + streamed.valid.rows).toBe(57);
    expect(streamed.skipped[1]).toMatch(/s\.csv:12: column "y": missing label for task "click"/);
    await expect(
      encodeDataset(path, spec, { validFraction: 0.2, seed: 1 }, { maxBadRows: 2 }),
    ).rejects.toThrow(/s\.csv:22: column "x": "x20" is not a number \(over the error budget of 2 bad rows\)/);
  });

  it("treats a missing column as fatal whatever the budget", async () => {
    const spec = parseSpec({ format: "csv", features: [...features, { name: "z", type: "numeric" }], tasks });
    await expect(
      encodeDataset(await file("m.csv", csv(5)), spec, { validFraction: 0.2, seed: 1 }, { maxBadRows: 100 }),
    ).rejects.toThrow(/features\.z: no column "z"/);
  });
});

function average(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}
