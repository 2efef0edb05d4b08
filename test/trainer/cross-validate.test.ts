/** k-fold cross-validation: folds partition the data, and the summary is mean ± std per metric. */
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseSpec } from "../../shared/spec.ts";
import { encodeDataset } from "../../trainer/data/encode-dataset.ts";
import { meanStd, summarise } from "../../trainer/workflows/cross-validate.ts";

describe("k-fold splits", () => {
  it("every group validates in exactly one of the k folds, and never trains in that fold", async () => {
    const spec = parseSpec({
      format: "csv",
      group: "req",
      features: [{ name: "x", type: "numeric" }],
      tasks: [{ name: "y", type: "binary", column: "y" }],
    });
    const lines = ["req,x,y"];
    for (let i = 0; i < 600; i++) lines.push(`r${Math.floor(i / 3)},${i},${i % 2}`);
    const path = join(await mkdtemp(join(tmpdir(), "mtrank-cv-")), "d.csv");
    await writeFile(path, `${lines.join("\n")}\n`);
    const k = 4;
    const seen = new Set<number>();
    let validRows = 0;
    for (let index = 0; index < k; index++) {
      const fold = await encodeDataset(path, spec, { validFraction: 0.1, seed: 5, fold: { k, index } });
      expect(fold.valid.rows).toBeGreaterThan(100);
      validRows += fold.valid.rows;
      const train = new Set(fold.train.groups);
      for (const g of fold.valid.groups!) {
        expect(train.has(g)).toBe(false);
        seen.add(g);
      }
    }
    expect(validRows).toBe(600);
    expect(seen.size).toBe(200);
    await expect(
      encodeDataset(path, spec, { validFraction: 0.1, seed: 5, fold: { k, index: 0 }, timeColumn: "x" }),
    ).rejects.toThrow(/--folds: .* cannot use --time-column/);
  });
});

describe("summarise", () => {
  it("gives mean and sample std per task metric, skipping metrics a task lacks", () => {
    const s = summarise([
      { click: { auc: 0.7, logloss: 0.3, count: 10 }, dwell: { mse: 2, count: 10 } },
      { click: { auc: 0.8, logloss: 0.5, count: 10 }, dwell: { mse: 4, count: 10 } },
    ]);
    expect(s.click!.auc!.mean).toBeCloseTo(0.75, 12);
    expect(s.click!.auc!.std).toBeCloseTo(Math.sqrt(0.005), 12);
    expect(s.dwell!.mse).toEqual(meanStd([2, 4]));
    expect(s.dwell!.auc).toBeUndefined();
    expect(meanStd([3])).toEqual({ mean: 3, std: 0 });
  });
});
