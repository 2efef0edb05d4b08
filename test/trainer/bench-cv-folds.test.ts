/** bench:quality --cv (bench/cv-folds.ts): every row is tested once, by models that never trained on it. */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Papa from "papaparse";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cvFolds, meanAndError } from "../../bench/cv-folds.ts";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "mtrank-cv-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const CSV = { format: "csv" as const, delimiter: "," };
// Quoted commas and newlines inside a field: the folds keep them whole.
const row = (i: number) => [`r${i}`, String(i % 2), `"a, ${i}\nb"`].join(",");
const header = "id,label,note";

async function files(trainRows: number, testRows: number) {
  const train = join(dir, "train.csv");
  const test = join(dir, "test.csv");
  await writeFile(train, [header, ...Array.from({ length: trainRows }, (_, i) => row(i))].join("\n"));
  await writeFile(
    test,
    [header, ...Array.from({ length: testRows }, (_, i) => row(trainRows + i))].join("\n"),
  );
  return { train, test, spec: join(dir, "spec.json") };
}

const ids = async (path: string) =>
  Papa.parse<string[]>(await readFile(path, "utf8"), { skipEmptyLines: true })
    .data.slice(1)
    .map((r) => r[0]!);

describe("cv folds", () => {
  it("deal every row of both files into one test fold; each fold trains on all the others", async () => {
    const folds = await cvFolds(await files(70, 30), 5, CSV, join(dir, "folds"));
    expect(folds).toHaveLength(5);
    const tested: string[] = [];
    for (const fold of folds) {
      const test = await ids(fold.test);
      const train = await ids(fold.train);
      expect(test.length).toBe(20);
      expect(train.length).toBe(80);
      expect(train.filter((id) => test.includes(id))).toEqual([]);
      tested.push(...test);
    }
    expect(tested.sort()).toEqual(Array.from({ length: 100 }, (_, i) => `r${i}`).sort());
    // Fields with commas and newlines come through whole.
    const first = Papa.parse<string[]>(await readFile(folds[0]!.test, "utf8"), { skipEmptyLines: true })
      .data[1]!;
    expect(first[2]).toMatch(/^a, \d+\nb$/);
  });

  it("deal the same folds on every run", async () => {
    const a = await cvFolds(await files(40, 10), 3, CSV, join(dir, "a"));
    const b = await cvFolds(await files(40, 10), 3, CSV, join(dir, "b"));
    for (let f = 0; f < 3; f++) expect(await ids(a[f]!.test)).toEqual(await ids(b[f]!.test));
  });

  it("deal another fold for most rows in another round, each round testing every row once", async () => {
    const f = await files(70, 30);
    const first = await cvFolds(f, 5, CSV, join(dir, "round-1"), 0);
    const second = await cvFolds(f, 5, CSV, join(dir, "round-2"), 1);
    const foldOf = async (folds: typeof first) => {
      const at = new Map<string, number>();
      for (const [i, fold] of folds.entries()) for (const id of await ids(fold.test)) at.set(id, i);
      return at;
    };
    const a = await foldOf(first);
    const b = await foldOf(second);
    expect(a.size).toBe(100);
    expect(b.size).toBe(100);
    // Two rows share a fold in both rounds about a fifth as often as in one: the deals differ.
    const rows = [...a.keys()];
    let together = 0;
    let againTogether = 0;
    for (const x of rows)
      for (const y of rows)
        if (x < y && a.get(x) === a.get(y)) {
          together++;
          if (b.get(x) === b.get(y)) againTogether++;
        }
    expect(againTogether / together).toBeGreaterThan(0.1);
    expect(againTogether / together).toBeLessThan(0.35);
  });

  it("refuse files with different columns, and a fold count out of range", async () => {
    const f = await files(10, 5);
    await writeFile(f.test, "id,other\nx,1\n");
    await expect(cvFolds(f, 3, CSV, join(dir, "c"))).rejects.toThrow(/different columns/);
    await expect(cvFolds(await files(3, 1), 5, CSV, join(dir, "d"))).rejects.toThrow(/from 2 to 4, got 5/);
  });

  it("give a mean and its standard error", () => {
    const { mean, error } = meanAndError([1, 2, 3, 4]);
    expect(mean).toBe(2.5);
    expect(error).toBeCloseTo(Math.sqrt(5 / 3 / 4), 12);
    // Folds whose training sets overlap: Nadeau and Bengio's (1/J + n_test/n_train) · s².
    const corrected = meanAndError([1, 2, 3, 4], 1 / 9);
    expect(corrected.mean).toBe(2.5);
    expect(corrected.error).toBeCloseTo(Math.sqrt((1 / 4 + 1 / 9) * (5 / 3)), 12);
  });
});
