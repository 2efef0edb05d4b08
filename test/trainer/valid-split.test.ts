/**
 * The default validation part: 2,000 rows' worth, between 3 % and 10 % of the file, from a count
 * of the file's lines before it is read.
 */
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { countLines } from "../../trainer/data/read-rows.ts";
import { defaultValidFraction } from "../../trainer/data/split.ts";
import { runTraining } from "../../trainer/workflows/train-and-report.ts";

async function file(name: string, body: string | Uint8Array): Promise<string> {
  const path = join(await mkdtemp(join(tmpdir(), "mtrank-valid-")), name);
  await writeFile(path, body);
  return path;
}

describe("defaultValidFraction", () => {
  it("is 10 % up to 20,000 rows, 2,000 rows from there, and 3 % from 66,667 rows", () => {
    expect(defaultValidFraction(0)).toBe(0.1);
    expect(defaultValidFraction(5_000)).toBe(0.1);
    expect(defaultValidFraction(20_000)).toBe(0.1);
    expect(defaultValidFraction(40_000)).toBe(0.05);
    expect(defaultValidFraction(70_000)).toBe(0.03);
    expect(defaultValidFraction(10_000_000)).toBe(0.03);
  });
});

describe("countLines", () => {
  it("counts line breaks, a last line without one, and gzipped files alike", async () => {
    expect(await countLines(await file("a.csv", "h\n1\n2\n"))).toBe(3);
    expect(await countLines(await file("b.csv", "h\n1\n2"))).toBe(3);
    expect(await countLines(await file("c.csv", ""))).toBe(0);
    const many = `h\n${"1,2\n".repeat(100_000)}`;
    expect(await countLines(await file("d.csv.gz", gzipSync(many)))).toBe(100_001);
    // It is the first pass to open the file: a missing one is named as the readers name it.
    await expect(countLines("/nonexistent/rows.csv")).rejects.toThrow(
      /^\/nonexistent\/rows\.csv: ENOENT: no such file or directory/,
    );
  });
});

describe("train's validation part", { timeout: 120_000 }, () => {
  it("holds about 2,000 of 40,000 rows by default, and the given fraction when one is given", async () => {
    const lines = ["x,y"];
    for (let i = 0; i < 40_000; i++) lines.push(`${i % 97},${i % 3 === 0 ? 1 : 0}`);
    const data = await file("rows.csv", `${lines.join("\n")}\n`);
    const spec = await file(
      "spec.json",
      JSON.stringify({
        format: "csv",
        features: [{ name: "x", type: "numeric" }],
        tasks: [{ name: "y", type: "binary", column: "y" }],
      }),
    );
    const auto = await runTraining({ data, spec, arch: "single", epochs: 1, workers: 1 });
    expect(auto.validRows).toBeGreaterThan(1_800);
    expect(auto.validRows).toBeLessThan(2_200);
    expect(auto.trainRows + auto.validRows).toBe(40_000);
    const given = await runTraining({
      data,
      spec,
      epochs: 1,
      arch: "single",
      workers: 1,
      validFraction: 0.2,
    });
    expect(given.validRows).toBeGreaterThan(7_600);
    expect(given.validRows).toBeLessThan(8_400);
  });
});
