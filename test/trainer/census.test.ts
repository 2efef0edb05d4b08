/**
 * The census-like generator (trainer/simulate/census.ts): its recode columns give the UCI set's
 * width, repeat what their source column says (up to the noise), and the written spec reads back.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadDataset } from "../../trainer/data/load-dataset.ts";
import { readSpecFile } from "../../trainer/data/read-spec.ts";
import { CENSUS_COLUMNS, censusColumns, generateCensus, writeCensus } from "../../trainer/simulate/census.ts";

const dir = mkdtempSync(join(tmpdir(), "mtrank-census-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("census generator", () => {
  it("adds recode columns before the two labels", () => {
    const plain = generateCensus({ rows: 50, seed: 3, worldSeed: 7 });
    const wide = generateCensus({ rows: 50, seed: 3, worldSeed: 7, recodes: 13 });
    expect(plain[0]).toHaveLength(CENSUS_COLUMNS.length);
    expect(wide[0]).toHaveLength(CENSUS_COLUMNS.length + 13);
    expect(censusColumns(13)).toHaveLength(CENSUS_COLUMNS.length + 13);
    expect(censusColumns(13).slice(-2)).toEqual(["income", "marital_status"]);
    // The first person is drawn before any recode noise: the same cells, the same labels.
    expect(wide[0]!.slice(0, CENSUS_COLUMNS.length - 2)).toEqual(plain[0]!.slice(0, -2));
    expect(wide[0]!.slice(-2)).toEqual(plain[0]!.slice(-2));
  });

  it("makes each recode a function of its source column, but for about 15% noise", () => {
    const rows = generateCensus({ rows: 2000, seed: 1, worldSeed: 7, recodes: 13 });
    const source = CENSUS_COLUMNS.indexOf("education");
    const recode = CENSUS_COLUMNS.length - 2; // recode_0 reads education
    const byValue = new Map<string, Map<string, number>>();
    for (const r of rows) {
      const counts = byValue.get(r[source]!) ?? new Map<string, number>();
      counts.set(r[recode]!, (counts.get(r[recode]!) ?? 0) + 1);
      byValue.set(r[source]!, counts);
    }
    let agree = 0;
    for (const counts of byValue.values()) agree += Math.max(...counts.values());
    expect(agree / rows.length).toBeGreaterThan(0.8);
    expect(agree / rows.length).toBeLessThan(0.95);
  });

  it("writes files whose spec has 40 features, 8 of them numeric, and that load", async () => {
    const files = writeCensus(dir, { train: { rows: 300, seed: 1 } }, 7, 13);
    const spec = await readSpecFile(files.spec!);
    expect(spec.features).toHaveLength(40);
    expect(spec.features.filter((f) => f.type === "numeric")).toHaveLength(8);
    const data = await loadDataset(files.train!, spec);
    expect(data.rows).toHaveLength(300);
    expect(data.labels.income!.length).toBe(300);
  });
});
