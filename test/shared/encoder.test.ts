/** The encoder in Node: parity with the committed fixture (its workerd twin is test/edge/encoder-parity.test.ts). */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  bucketIndex,
  compileEncoder,
  FeatureValueError,
  type FeatureValues,
} from "../../shared/encoder/encode.ts";
import { fitEncoder } from "../../shared/encoder/fit.ts";
import {
  type EncoderState,
  MISSING_ID,
  type NumericState,
  type VectorState,
} from "../../shared/encoder/state.ts";
import { parseSpec } from "../../shared/spec.ts";

/** A CSV spec of these features and one binary task. */
const specOf = (features: unknown[]) =>
  parseSpec({ format: "csv", features, tasks: [{ name: "y", type: "binary", column: "y" }] });

const fixture = JSON.parse(readFileSync("fixtures/encoder/encoder-fixture.json", "utf8")) as {
  state: EncoderState;
  rows: FeatureValues[];
  expected: { dense: number[]; ids: number[] };
};

describe("encoder", () => {
  it("encodes the fixture rows exactly as recorded", () => {
    const batch = compileEncoder(fixture.state).encodeRows(fixture.rows);
    expect([...batch.ids]).toEqual(fixture.expected.ids);
    expect([...batch.dense]).toEqual(fixture.expected.dense.map((x) => Math.fround(x)));
  });

  it("encodes a request like the same rows flattened (user/context once, items per candidate)", () => {
    const encoder = compileEncoder(fixture.state);
    const user = { user_id: "u2", age: "51" };
    const context = { device: "desktop" };
    const items = [
      { item_id: "i1", category: "shoes", price: 10 },
      { item_id: "zz", category: "bags", price: null },
      {},
    ];
    const request = encoder.encodeRequest({ user, context }, items);
    const flat = encoder.encodeRows(items.map((item) => ({ ...user, ...context, ...item })));
    expect([...request.ids]).toEqual([...flat.ids]);
    expect([...request.dense]).toEqual([...flat.dense]);
  });

  it("maps missing to id 0, unseen to the OOV id 1, and marks missing numbers", () => {
    const spec = specOf([
      { name: "c", type: "categorical", minCount: 1 },
      { name: "x", type: "numeric", buckets: 0 },
    ]);
    const state = fitEncoder(spec, [
      { c: "a", x: "1" },
      { c: "b", x: "3" },
      { c: "a", x: "" },
    ]);
    const batch = compileEncoder(state).encodeRows([{ c: "", x: "NA" }, { c: "new" }, { c: "a", x: 2 }]);
    expect([...batch.ids]).toEqual([0, 1, 2]);
    expect([...batch.dense]).toEqual([0, 1, 0, 1, 0, 0]);
  });

  it("reads what training never had as what it had: a number always given, or never", () => {
    const spec = specOf([
      { name: "always", type: "numeric", buckets: 2 },
      { name: "never", type: "numeric" },
      { name: "v", type: "vector", dim: 2 },
    ]);
    const rows = Array.from({ length: 40 }, (_, i) => ({ always: i, never: "", v: `${i} ${-i}` }));
    const state = fitEncoder(spec, rows);
    const [always, never, v] = state.features as [NumericState, NumericState, VectorState];
    expect([always.seen, never.seen, v.seen]).toEqual(["values", "missing", "values"]);
    const encode = compileEncoder(state);
    const { dense, ids } = encode.encodeRows([
      { always: null, never: 12.5, v: "" },
      { always: 19.5, never: "", v: "19.5 -19.5" },
    ]);
    // Row 0: the missing number and vector write their training mean (0) with the indicator
    // off, as row 1's values at the mean do; the value never given reads as missing (0, 1).
    const width = state.denseSize;
    expect([...dense.subarray(0, width)]).toEqual([0, 0, 0, 1, 0, 0, 0]);
    expect([...dense.subarray(width)].map((x) => Math.round(x * 1e6) / 1e6)).toEqual([0, 0, 0, 1, 0, 0, 0]);
    // The buckets' missing row, which training never read (its mean row after training).
    expect(ids[0]).toBe(always.buckets!.offset + MISSING_ID);
    // Training rows encode as before: every one had "always" and "v", none had "never".
    const trained = encode.encodeRows(rows).dense;
    for (let r = 0; r < rows.length; r++) {
      expect(trained[r * width + 1]).toBe(0);
      expect([trained[r * width + 2], trained[r * width + 3]]).toEqual([0, 1]);
      expect(trained[r * width + 6]).toBe(0);
    }
    // Training that had both kinds keeps the indicator.
    const mixed = fitEncoder(spec, [...rows, { always: "", never: 3, v: "" }]);
    expect(mixed.features.map((f) => (f as NumericState).seen)).toEqual([undefined, undefined, undefined]);
    expect(
      [...compileEncoder(mixed).encodeRows([{}]).dense].filter((_, i) => i === 1 || i === 3 || i === 6),
    ).toEqual([1, 1, 1]);
  });

  it("refuses a numeric value that is present but no number, naming the feature and where it was", () => {
    const encoder = compileEncoder(fixture.state);
    expect(() => encoder.encodeRows([{ age: "abc" }])).toThrow(FeatureValueError);
    expect(() => encoder.encodeRows([{ age: "abc" }])).toThrow('feature "age": "abc" is not a number');
    for (const value of ["Infinity", "1e999", "12 years", {}]) {
      expect(() => encoder.encodeRows([{ age: value as string }])).toThrow(/is not a number/);
    }
    try {
      encoder.encodeRequest({ user: { age: "old" } }, [{}]);
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(FeatureValueError);
      expect((error as FeatureValueError).at).toBe("user");
    }
    // Spellings of numbers, and the spec's missing tokens, are read as before.
    expect(() =>
      encoder.encodeRows([{ age: " 33 " }, { age: "NA" }, { age: true }, { age: "-1.5e1" }]),
    ).not.toThrow();
  });

  it("clips standardised outliers (a state without a training range: one fitted before it was kept)", () => {
    const spec = specOf([{ name: "x", type: "numeric" }]);
    const state = fitEncoder(spec, [{ x: 0 }, { x: 1 }, { x: 2 }]);
    const x = state.features[0]!;
    if (x.kind !== "numeric") throw new Error("numeric expected");
    expect(x.range).toEqual([0, 2]);
    delete x.range;
    const batch = compileEncoder(state).encodeRows([{ x: 1e9 }, { x: -1e9 }]);
    expect(batch.dense[0]).toBe(8);
    expect(batch.dense[2]).toBe(-8);
  });
});

describe("numeric quantile buckets", () => {
  const spec = specOf([
    { name: "x", type: "numeric", buckets: 4 },
    { name: "flag", type: "numeric" },
    { name: "off", type: "numeric", buckets: 0 },
  ]);
  const rows = Array.from({ length: 100 }, (_, i) => ({ x: i, flag: i % 2, off: i }));
  const state = fitEncoder(spec, rows);

  it("cuts training values into equally filled buckets, fewer when values repeat, none when off", () => {
    const [x, flag, off] = state.features as NumericState[];
    expect(x!.buckets!.boundaries).toEqual([25, 50, 75]);
    expect(flag!.buckets!.boundaries).toEqual([1]);
    expect(off!.buckets).toBeUndefined();
    expect(state.idSlots).toBe(2);
  });

  it("writes missing as 0 and bucket k as 1 + k, in the bucket slot's block of rows", () => {
    const x = state.features[0] as NumericState;
    const batch = compileEncoder(state).encodeRows([
      { x: -5 },
      { x: 25 },
      { x: 74.9 },
      { x: 1e9 },
      { x: "" },
    ]);
    const ids = Array.from(
      { length: 5 },
      (_, r) => batch.ids[r * state.idSlots + x.buckets!.slot]! - x.buckets!.offset,
    );
    expect(ids).toEqual([1, 2, 3, 4, 0]);
  });

  it("bucketIndex counts boundaries <= x", () => {
    expect([-1, 0, 0.5, 1, 2, 3].map((v) => bucketIndex([0, 1, 2], v))).toEqual([0, 1, 1, 2, 3, 3]);
  });
});
