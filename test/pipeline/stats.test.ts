import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseSpec } from "../../shared/spec.ts";
import type { DataStats } from "../../trainer/pipeline/contracts.ts";
import {
  DATA_STATS_FILE,
  dataStats,
  readDataStats,
  statsCollector,
  TOP_CATEGORIES,
  writeDataStats,
} from "../../trainer/pipeline/stats.ts";
import { makeRows, spec, tempDir, writeCsv, writeJsonl, writeParquet } from "./data-rows.ts";

describe("dataStats", () => {
  it("gives the same stats for a Parquet file as for the same rows in CSV and JSONL", async () => {
    const dir = await tempDir();
    const rows = makeRows(3000);
    const csv = await dataStats([await writeCsv(dir, "day.csv.gz", rows)], spec);
    const parquet = await dataStats([writeParquet(dir, "day.parquet", rows, { rowGroupSize: 1000 })], spec);
    const jsonl = await dataStats([await writeJsonl(dir, "day.jsonl", rows)], spec);
    expect(parquet).toEqual(csv);
    expect(jsonl).toEqual(csv);
    expect(csv.rows).toBe(3000);
  });

  it("bins numbers on their deciles, lists categories and bag elements, and rates labels", async () => {
    const rows = makeRows(2000);
    const stats = await dataStats(
      rows.map((r) => ({ ...r })),
      spec,
    );
    const price = stats.features.price!;
    expect(price.kind).toBe("numeric");
    if (price.kind !== "numeric") return;
    expect(price.edges).toHaveLength(9);
    expect(price.shares).toHaveLength(10);
    for (const share of price.shares) expect(share).toBeCloseTo(0.1, 2);
    const present = rows.filter((r) => r.price !== null).map((r) => r.price!);
    expect(price.missing).toBeCloseTo(1 - present.length / rows.length, 10);
    // An edge is the smallest value with at least k/10 of the values at or below it.
    const sorted = [...present].sort((a, b) => a - b);
    expect(price.edges[4]).toBe(sorted[Math.ceil(0.5 * sorted.length) - 1]);

    const country = stats.features.country!;
    expect(country.kind).toBe("categorical");
    if (country.kind !== "categorical") return;
    const us = rows.filter((r) => r.country === "us").length;
    const known = rows.filter((r) => r.country !== null).length;
    expect(country.shares.us).toBeCloseTo(us / known, 12);
    expect(country.other).toBe(0);
    expect(country.missing).toBeCloseTo((rows.length - known) / rows.length, 12);
    // Bags: shares among elements; missing is the share of empty bags.
    const tags = stats.features.tags!;
    if (tags.kind !== "categorical") throw new Error("tags: expected categorical");
    const elements = rows.flatMap((r) => (r.tags === "" ? [] : r.tags.split("|")));
    expect(tags.shares.a).toBeCloseTo(elements.filter((t) => t === "a").length / elements.length, 12);
    expect(tags.missing).toBeCloseTo(rows.filter((r) => r.tags === "").length / rows.length, 12);
    expect(stats.features.emb).toBeUndefined();

    const clicks = rows.filter((r) => r.click === 1);
    expect(stats.labels.click).toEqual({ rate: clicks.length / rows.length, labelled: rows.length });
    // dwell is masked where absent and trained on log1p: its mean is over clicked rows, log1p'd.
    expect(stats.labels.dwell!.labelled).toBe(clicks.length);
    const mean = clicks.reduce((sum, r) => sum + Math.log1p(r.dwell!), 0) / clicks.length;
    expect(stats.labels.dwell!.rate).toBeCloseTo(mean, 5);
  });

  it("lists the top categories and sums the rest in other; repeated edges merge", async () => {
    const spec2 = parseSpec({
      format: "jsonl",
      features: [
        { name: "id", type: "categorical" },
        { name: "flag", type: "numeric" },
      ],
      tasks: [{ name: "y", type: "binary", column: "y" }],
    });
    // id k appears 200 - k times: the 50 most frequent are 0..49.
    const records = [];
    for (let k = 0; k < 120; k++)
      for (let i = 0; i < 200 - k; i++) records.push({ id: `id${k}`, flag: k % 3 === 0 ? 1 : 0, y: 0 });
    const stats = await dataStats(records, spec2);
    const id = stats.features.id!;
    if (id.kind !== "categorical") throw new Error("id: expected categorical");
    expect(Object.keys(id.shares)).toHaveLength(TOP_CATEGORIES);
    expect(Object.keys(id.shares)[0]).toBe("id0");
    expect(id.shares.id49).toBeDefined();
    expect(id.shares.id50).toBeUndefined();
    const total = records.length;
    const listed = Array.from({ length: 50 }, (_, k) => 200 - k).reduce((a, b) => a + b, 0);
    expect(id.other).toBeCloseTo((total - listed) / total, 12);
    const flag = stats.features.flag!;
    if (flag.kind !== "numeric") throw new Error("flag: expected numeric");
    expect(flag.edges).toEqual([0, 1]);
    expect(flag.shares[2]).toBe(0);
    expect(flag.shares[0]! + flag.shares[1]!).toBeCloseTo(1, 12);
  });

  it("skips rows that fail the spec's checks", async () => {
    const stats = await dataStats(
      [
        { price: 1, country: "us", click: 1, dwell: null, emb: [0, 1] },
        { price: "oops", country: "us", click: 1, dwell: null },
        { price: 2, country: "us", click: "maybe", dwell: null },
      ],
      spec,
    );
    expect(stats.rows).toBe(1);
  });

  it("bins on a reference's edges and lists its categories as well as its own", () => {
    const make = (rows: ReturnType<typeof makeRows>) => {
      const collector = statsCollector(spec);
      for (const r of rows) collector.add(r as unknown as Record<string, unknown>, [r.click, Number.NaN]);
      return collector;
    };
    const reference = make(makeRows(500)).finish();
    const collector = make(makeRows(500, { seed: 3, shift: 50, newCountries: 1 }));
    const own = collector.finish();
    const on = collector.finish(reference);
    if (on.features.price?.kind !== "numeric" || reference.features.price?.kind !== "numeric")
      throw new Error("price: expected numeric");
    expect(on.features.price.edges).toEqual(reference.features.price.edges);
    expect(own.features.price).not.toEqual(on.features.price);
    const country = on.features.country;
    if (country?.kind !== "categorical") throw new Error("country: expected categorical");
    // Every new row's country is new: the reference's categories are listed at 0.
    expect(country.shares.us).toBe(0);
    expect(Object.keys(country.shares).some((k) => k.startsWith("new-"))).toBe(true);
  });
});

describe("data-stats.json", () => {
  it("round-trips, is absent as undefined and names a broken file", async () => {
    const dir = await tempDir();
    expect(await readDataStats(dir)).toBeUndefined();
    const stats: DataStats = {
      rows: 10,
      features: {
        x: { kind: "numeric", edges: [1, 2], shares: [0.5, 0.3, 0.2], missing: 0.1 },
        // Category names that are also Object.prototype's own: kept as data, not as the prototype.
        c: { kind: "categorical", shares: { constructor: 0.6, ["__proto__"]: 0.4 }, other: 0, missing: 0 },
      },
      labels: { click: { rate: 0.25, labelled: 8 } },
    };
    const path = await writeDataStats(dir, stats);
    expect(path).toBe(join(dir, DATA_STATS_FILE));
    const back = await readDataStats(dir);
    expect(back).toEqual(JSON.parse(await readFile(path, "utf8")));
    const c = back?.features.c;
    if (c?.kind !== "categorical") throw new Error("c: expected categorical");
    expect(Object.entries(c.shares)).toEqual([
      ["constructor", 0.6],
      ["__proto__", 0.4],
    ]);

    await writeFile(path, "{");
    await expect(readDataStats(dir)).rejects.toThrow(`${path}: not valid JSON`);
    await writeFile(
      path,
      JSON.stringify({ ...stats, features: { x: { kind: "numeric", edges: [1], shares: [1] } } }),
    );
    await expect(readDataStats(dir)).rejects.toThrow(`${path}: features.x.missing: expected a number`);
  });
});
