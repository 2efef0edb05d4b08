/**
 * Values at the edge of what a double holds: a numeric feature with one value near 1e300 (or all
 * of them there) must fit a finite mean and std, so the manifest (JSON, where Infinity becomes
 * null) encodes served rows as training did; a regression label past float32's range (labels
 * are float32 in training) is an error naming the file, line and column, not a NaN loss.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compileEncoder } from "../../shared/encoder/encode.ts";
import { fitEncoder } from "../../shared/encoder/fit.ts";
import type { EncoderState } from "../../shared/encoder/state.ts";
import { parseSpec } from "../../shared/spec.ts";
import { encodeDataset } from "../../trainer/data/encode-dataset.ts";
import { loadDataset } from "../../trainer/data/load-dataset.ts";
import { fitPlatt, IDENTITY } from "../../trainer/train/platt-scaling.ts";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "mtrank-extreme-data-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("numeric features with values near the double's limit", () => {
  const spec = parseSpec({
    format: "csv",
    features: [{ name: "z", type: "numeric", buckets: 0 }],
    tasks: [{ name: "y", type: "binary", column: "y" }],
  });
  const shapes: Record<string, (i: number) => number> = {
    "one outlier of 1e300": (i) => (i === 3 ? 1e300 : (i % 17) / 17),
    "one outlier of -1e300": (i) => (i === 3 ? -1e300 : (i % 17) / 17),
    "every value near 1e300": (i) => (1 + (i % 13)) * 1e299,
  };
  for (const [name, value] of Object.entries(shapes)) {
    it(`${name}: finite statistics, and the manifest's copy encodes as the fitted one`, () => {
      const rows = Array.from({ length: 600 }, (_, i) => ({ z: String(value(i)) }));
      const state = fitEncoder(spec, rows);
      const z = state.features[0]!;
      expect(z.kind).toBe("numeric");
      if (z.kind !== "numeric") return;
      expect(Number.isFinite(z.mean)).toBe(true);
      expect(Number.isFinite(z.std)).toBe(true);
      expect(z.std).toBeGreaterThan(0);
      const served = JSON.parse(JSON.stringify(state)) as EncoderState;
      const fitted = compileEncoder(state).encodeRows(rows).dense;
      expect([...compileEncoder(served).encodeRows(rows).dense]).toEqual([...fitted]);
      expect(fitted.every((x) => Number.isFinite(x))).toBe(true);
    });
  }

  it("keeps ordinary columns' statistics as they were", () => {
    const rows = [1, 2, 3, 4].map((x) => ({ z: String(x) }));
    const z = fitEncoder(spec, rows).features[0]!;
    if (z.kind !== "numeric") throw new Error("not numeric");
    expect(z.mean).toBe(2.5);
    expect(z.std).toBe(Math.sqrt(5 / 3));
  });
});

describe("regression labels past float32's range", () => {
  const spec = (transform?: "log1p") =>
    parseSpec({
      format: "csv",
      features: [{ name: "x", type: "numeric" }],
      tasks: [{ name: "spend", type: "regression", column: "r", ...(transform ? { transform } : {}) }],
    });

  it("is an error naming the file, line and column", async () => {
    const path = join(dir, "huge-label.csv");
    await writeFile(path, "x,r\n1,2\n2,1e300\n3,4\n");
    await expect(loadDataset(path, spec())).rejects.toThrow(`${path}:3: column "r": 1e+300`);
  });

  it("reads labels of 1e12 and, through log1p, 1e300 as numbers", async () => {
    const path = join(dir, "big-labels.csv");
    await writeFile(path, "x,r\n1,1e12\n2,1e300\n");
    const plain = join(dir, "big-plain.csv");
    await writeFile(plain, "x,r\n1,1e12\n2,-3e12\n");
    expect([...(await loadDataset(plain, spec())).labels.spend!]).toEqual([
      Math.fround(1e12),
      Math.fround(-3e12),
    ]);
    const logged = [...(await loadDataset(path, spec("log1p"))).labels.spend!];
    expect(logged.every((y) => Number.isFinite(y))).toBe(true);
  });
});

describe("Platt scaling on a validation part of a few rows", () => {
  it("keeps the identity where the rows are separated by the logit (no finite fit exists)", () => {
    // Two validation rows (--valid-fraction 0.002 on 600 rows): one positive above one negative.
    expect(fitPlatt([1, 0], [0.3, -0.2])).toEqual(IDENTITY);
    expect(fitPlatt([0, 1, 1, 0, 1], [-1, 0.5, 2, -0.1, 0.4])).toEqual(IDENTITY);
    // Overlapping classes still get a fit.
    const fit = fitPlatt([0, 1, 1, 0, 1, 0], [-1, 0.5, 2, 0.6, 0.4, -0.3]);
    expect(fit).not.toEqual(IDENTITY);
    expect(Number.isFinite(fit.scale) && fit.scale > 0 && fit.scale < 100).toBe(true);
  });
});

describe("a time split where most rows share the earliest time", () => {
  const spec = parseSpec({
    format: "csv",
    features: [{ name: "x", type: "numeric" }],
    tasks: [{ name: "y", type: "binary", column: "y" }],
  });
  const csv = (times: (i: number) => string) =>
    `x,y,t\n${Array.from({ length: 200 }, (_, i) => `${i},${i % 2},${times(i)}`).join("\n")}\n`;

  it("validates on the later times, not on every row", async () => {
    // Day 1 for 195 rows, day 2 for 5: the 0.9 quantile is day 1, which would leave no training row.
    const path = join(dir, "mostly-day-one.csv");
    await writeFile(
      path,
      csv((i) => (i < 195 ? "2024-01-01" : "2024-01-02")),
    );
    const data = await encodeDataset(path, spec, { validFraction: 0.1, seed: 1, timeColumn: "t" });
    expect(data.train.rows).toBe(195);
    expect(data.valid.rows).toBe(5);
  });

  it("still validates on every row when every row has one time (the run then stops, saying so)", async () => {
    const path = join(dir, "one-time.csv");
    await writeFile(
      path,
      csv(() => "1700000000"),
    );
    const data = await encodeDataset(path, spec, { validFraction: 0.1, seed: 1, timeColumn: "t" });
    expect(data.train.rows).toBe(0);
  });
});

describe("vector elements past float32's range", () => {
  const spec = parseSpec({
    format: "csv",
    features: [{ name: "v", type: "vector", dim: 2 }],
    tasks: [{ name: "y", type: "binary", column: "y" }],
  });

  it("is an error naming the file, line and column (the network reads float32: Infinity, then a NaN loss)", async () => {
    const path = join(dir, "huge-vector.csv");
    await writeFile(path, "v,y\n1 2,0\n1e300 0.5,1\n3 4,1\n");
    await expect(loadDataset(path, spec)).rejects.toThrow(`${path}:3: column "v": element 0: 1e+300`);
    const fine = join(dir, "big-vector.csv");
    await writeFile(fine, "v,y\n1e30 -2,0\n3 4,1\n");
    expect((await loadDataset(fine, spec)).rows).toHaveLength(2);
  });
});
