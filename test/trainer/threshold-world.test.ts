import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { auc } from "../../trainer/core/metrics.ts";
import { loadDataset } from "../../trainer/data/load-dataset.ts";
import { readSpecFile } from "../../trainer/data/read-spec.ts";
import {
  generateThresholdWorld,
  THRESHOLD_COLUMNS,
  writeThresholdWorld,
} from "../../trainer/simulate/threshold-world.ts";

const dir = mkdtempSync(join(tmpdir(), "mtrank-thresholds-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("threshold world", () => {
  it("is deterministic per seed and shares one world between seeds", () => {
    const a = generateThresholdWorld({ rows: 200, seed: 1, worldSeed: 7 });
    expect(generateThresholdWorld({ rows: 200, seed: 1, worldSeed: 7 })).toEqual(a);
    expect(generateThresholdWorld({ rows: 200, seed: 2, worldSeed: 7 })).not.toEqual(a);
    expect(generateThresholdWorld({ rows: 200, seed: 1, worldSeed: 8 })).not.toEqual(a);
    for (const row of a) expect(row).toHaveLength(THRESHOLD_COLUMNS.length);
  });

  it("writes files the trainer's reader ingests, with the truth beside the labels", async () => {
    const paths = writeThresholdWorld(dir, { train: { rows: 4000, seed: 1 } });
    const header = readFileSync(paths.train!, "utf8").split("\n", 1)[0];
    expect(header).toBe(THRESHOLD_COLUMNS.join(","));
    const data = await loadDataset(paths.train!, await readSpecFile(paths.spec!));
    expect(data.rows).toHaveLength(4000);
    const rate = (y: Float32Array) => y.reduce((s, v) => s + v, 0) / y.length;
    expect(rate(data.labels.a!)).toBeGreaterThan(0.08);
    expect(rate(data.labels.a!)).toBeLessThan(0.22);
    expect(rate(data.labels.b!)).toBeGreaterThan(0.18);
    expect(rate(data.labels.b!)).toBeLessThan(0.4);
    // 1% of number cells are empty, and the reader takes them (the spec lists "" as missing).
    expect(data.rows.some((r) => r.n0 === "")).toBe(true);
    // The labels follow the written probabilities: the oracle ranks well above chance.
    expect(auc(data.labels.a!, data.truth.a!)).toBeGreaterThan(0.75);
    expect(auc(data.labels.b!, data.truth.b!)).toBeGreaterThan(0.75);
  });
});
