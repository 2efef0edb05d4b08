/** Numeric outliers are clipped at training quantiles before standardising. */
import { describe, expect, it } from "vitest";
import { compileEncoder } from "../../shared/encoder/encode.ts";
import { fitEncoder } from "../../shared/encoder/fit.ts";
import { parseSpec } from "../../shared/spec.ts";

const spec = parseSpec({
  format: "csv",
  features: [{ name: "x", type: "numeric", buckets: 0 }],
  tasks: [{ name: "y", type: "binary", column: "y" }],
});

describe("outlier clipping", () => {
  it("clips raw values to the [0.1%, 99.9%] training quantiles, so one huge value does not set the scale", () => {
    const rows = Array.from({ length: 5000 }, (_, i) => ({ x: String(i % 100) }));
    rows.push({ x: "1e9" }, { x: "-1e9" });
    const state = fitEncoder(spec, rows);
    const x = state.features[0]!;
    if (x.kind !== "numeric") throw new Error("numeric expected");
    expect(x.range).toEqual([0, 99]);
    expect(x.mean).toBeCloseTo(49.5, 1);
    expect(x.std).toBeGreaterThan(25);
    expect(x.std).toBeLessThan(35);
    const encoder = compileEncoder(state);
    const z = (v: string) => encoder.encodeRows([{ x: v }]).dense[0]!;
    expect(z("1e12")).toBe(z("99"));
    expect(z("-5")).toBe(z("0"));
    expect(z("50")).toBeCloseTo((50 - x.mean) / x.std, 5);
  });

  it("clips small samples and tail-free data at their training extremes, with exact statistics", () => {
    const few = fitEncoder(spec, [{ x: "1" }, { x: "1000" }, { x: "3" }]);
    expect(few.features[0]).toMatchObject({ range: [1, 1000] });
    expect((few.features[0] as { mean: number }).mean).toBeCloseTo((1 + 1000 + 3) / 3, 9);
    const flat = fitEncoder(
      spec,
      Array.from({ length: 3000 }, (_, i) => ({ x: String(i % 2) })),
    );
    expect(flat.features[0]).toMatchObject({ range: [0, 1], mean: 0.5 });
    const encoder = compileEncoder(flat);
    const z = (v: string) => encoder.encodeRows([{ x: v }]).dense[0]!;
    expect(z("7")).toBe(z("1"));
    expect(z("-3")).toBe(z("0"));
  });

  it("a column constant in training reads the same whatever a request sends", () => {
    const constant = fitEncoder(
      spec,
      Array.from({ length: 50 }, () => ({ x: "7" })),
    );
    expect(constant.features[0]).toMatchObject({ range: [7, 7] });
    const encoder = compileEncoder(constant);
    const z = (v: string) => encoder.encodeRows([{ x: v }]).dense[0]!;
    for (const v of ["8", "-1e9", "1e300", "7"]) expect(z(v)).toBe(0);
    // Without values in training there is nothing to clip to: no range.
    expect(fitEncoder(spec, [{ x: "" }, { x: "NA" }]).features[0]).not.toHaveProperty("range");
  });
});
