import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createRng } from "../../trainer/core/rng.ts";
import {
  SIM_COLUMNS,
  SIM_TRUTH_COLUMNS,
  type SimRow,
  type SimSpecJson,
  simulate,
  toCsv,
  writeSimulation,
} from "../../trainer/simulate/simulator.ts";

const SMALL = { requests: 500 };

function mean(values: readonly number[]): number {
  return values.reduce((s, v) => s + v, 0) / values.length;
}

describe("rng", () => {
  it("is deterministic and in range", () => {
    const a = createRng(7);
    const b = createRng(7);
    for (let i = 0; i < 100; i++) {
      const x = a.uniform();
      expect(x).toBe(b.uniform());
      expect(x).toBeGreaterThanOrEqual(0);
      expect(x).toBeLessThan(1);
      const k = a.int(5);
      expect(k).toBe(b.int(5));
      expect(Number.isInteger(k) && k >= 0 && k < 5).toBe(true);
    }
    const r = createRng(1);
    const xs = Array.from({ length: 20000 }, () => r.normal());
    expect(Math.abs(mean(xs))).toBeLessThan(0.05);
    expect(Math.abs(mean(xs.map((x) => x * x)) - 1)).toBeLessThan(0.05);
  });
});

describe("simulate", () => {
  it("same seed gives an identical CSV, a different seed a different one", () => {
    const a = toCsv(simulate({ ...SMALL, seed: 3 }).rows);
    const b = toCsv(simulate({ ...SMALL, seed: 3 }).rows);
    const c = toCsv(simulate({ ...SMALL, seed: 4 }).rows);
    expect(a).toBe(b);
    expect(c).not.toBe(a);
  });

  it("writes the expected columns and row count", () => {
    const { rows } = simulate({ ...SMALL, listSize: 7 });
    expect(rows).toHaveLength(500 * 7);
    const lines = toCsv(rows).trimEnd().split("\n");
    expect(lines[0]).toBe(SIM_COLUMNS.join(","));
    expect(lines).toHaveLength(rows.length + 1);
    for (const line of lines.slice(1, 50)) expect(line.split(",")).toHaveLength(SIM_COLUMNS.length);
    // Items within a request are distinct and positions are 0..listSize-1.
    const first = rows.filter((r) => r.request_id === "r0");
    expect(new Set(first.map((r) => r.item_id)).size).toBe(7);
    expect(first.map((r) => r.position)).toEqual([0, 1, 2, 3, 4, 5, 6]);
  });

  it("purchases only clicked items; dwell only when clicked; some values missing", () => {
    const { rows } = simulate(SMALL);
    for (const r of rows) {
      if (r.purchase === 1) expect(r.click).toBe(1);
      if (r.click === 0) expect(r.dwell_s).toBeNull();
      else expect(r.dwell_s).toBeGreaterThan(0);
      expect(r.p_click_observed).toBeLessThanOrEqual(r.p_click);
    }
    expect(rows.some((r) => r.purchase === 1)).toBe(true);
    expect(rows.some((r) => r.user_activity === null)).toBe(true);
    expect(rows.some((r) => r.item_price === null)).toBe(true);
  });

  it("has realistic rates and visible position bias on the default simulation", () => {
    const { rows } = simulate();
    expect(rows).toHaveLength(40_000);
    const ctr = mean(rows.map((r) => r.click));
    const purchaseRate = mean(rows.map((r) => r.purchase));
    expect(ctr).toBeGreaterThan(0.08);
    expect(ctr).toBeLessThan(0.22);
    expect(purchaseRate).toBeGreaterThan(0.005);
    expect(purchaseRate).toBeLessThan(0.05);
    const top = mean(rows.filter((r) => r.position <= 2).map((r) => r.click));
    const bottom = mean(rows.filter((r) => r.position >= 7).map((r) => r.click));
    expect(top).toBeGreaterThan(bottom * 1.5);
  });

  it("ground-truth probabilities correlate with the labels", () => {
    const { rows } = simulate({ ...SMALL, requests: 1000 });
    const deciles = (sorted: readonly SimRow[]) => {
      const n = Math.floor(sorted.length / 10);
      return { low: sorted.slice(0, n), high: sorted.slice(-n) };
    };
    for (const key of ["p_click", "p_click_observed"] as const) {
      const sorted = [...rows].sort((a, b) => a[key] - b[key]);
      const { low, high } = deciles(sorted);
      expect(mean(high.map((r) => r.click))).toBeGreaterThan(mean(low.map((r) => r.click)) + 0.1);
    }
    const clicked = rows.filter((r) => r.click === 1);
    const byPurchase = [...clicked].sort((a, b) => a.p_purchase_given_click - b.p_purchase_given_click);
    const half = Math.floor(byPurchase.length / 2);
    expect(mean(byPurchase.slice(half).map((r) => r.purchase))).toBeGreaterThan(
      mean(byPurchase.slice(0, half).map((r) => r.purchase)),
    );
  });

  it("purchaseBias makes purchases rarer in the same world, clicks untouched", () => {
    const base = simulate({ requests: 2000 }).rows;
    const sparse = simulate({ requests: 2000, purchaseBias: -3.6 }).rows;
    expect(sparse.map((r) => r.click)).toEqual(base.map((r) => r.click));
    const rate = (rows: readonly SimRow[]) => mean(rows.filter((r) => r.click === 1).map((r) => r.purchase));
    expect(rate(base)).toBeGreaterThan(0.14);
    expect(rate(sparse)).toBeGreaterThan(0.03);
    expect(rate(sparse)).toBeLessThan(0.09);
    sparse.forEach((r, i) => {
      expect(r.purchase).toBeLessThanOrEqual(base[i]!.purchase);
    });
  });

  it("rejects bad options", () => {
    expect(() => simulate({ purchaseBias: Number.NaN })).toThrow(/purchaseBias/);
    expect(() => simulate({ users: 0 })).toThrow(/users/);
    expect(() => simulate({ requests: 1.5 })).toThrow(/requests/);
    expect(() => simulate({ items: 5, listSize: 10 })).toThrow(/listSize/);
  });
});

describe("writeSimulation", () => {
  it("writes data.csv and a spec that lists features and tasks but no truth columns", () => {
    const dir = mkdtempSync(join(tmpdir(), "mtrank-sim-"));
    try {
      const result = writeSimulation(dir, { ...SMALL, seed: 9 });
      expect(result.rowCount).toBe(5000);
      const csv = readFileSync(result.dataPath, "utf8");
      expect(csv).toBe(toCsv(simulate({ ...SMALL, seed: 9 }).rows));
      const spec = JSON.parse(readFileSync(result.specPath, "utf8")) as SimSpecJson;
      expect(spec.format).toBe("csv");
      expect(spec.group).toBe("request_id");
      expect(spec.missing).toEqual([""]);
      const names = spec.features.map((f) => f.name);
      expect(names).toEqual([
        "user_id",
        "user_segment",
        "user_activity",
        "hour",
        "device",
        "item_id",
        "item_category",
        "item_price",
        "item_quality",
      ]);
      for (const truth of SIM_TRUTH_COLUMNS) expect(names).not.toContain(truth);
      for (const label of ["position", "click", "purchase", "dwell_s", "request_id"]) {
        expect(names).not.toContain(label);
      }
      expect(spec.tasks.map((t) => [t.name, t.column, "given" in t ? t.given : undefined])).toEqual([
        ["click", "click", undefined],
        ["purchase", "purchase", "click"],
        ["dwell", "dwell_s", undefined],
      ]);
      expect(spec.tasks[2]).toMatchObject({ type: "regression", transform: "log1p", missingLabel: "mask" });
      expect(spec.truth).toEqual({ click: "p_click", purchase: "p_purchase" });
      const header = csv.slice(0, csv.indexOf("\n")).split(",");
      for (const f of spec.features) expect(header).toContain(f.name);
      for (const t of spec.tasks) expect(header).toContain(t.column);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
