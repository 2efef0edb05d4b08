/**
 * Frequency columns: an id-like categorical (over ID_FEATURE_ROWS embedding rows) gets a dense
 * column holding the standardised log(1 + training count) of the row's value; the spec turns it
 * on or off per feature; rows and requests encode it alike.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { compileEncoder, type FeatureValues } from "../../shared/encoder/encode.ts";
import { fitEncoder } from "../../shared/encoder/fit.ts";
import {
  type CategoricalState,
  type EncoderState,
  encodedColumns,
  ID_FEATURE_ROWS,
  RESERVED_IDS,
} from "../../shared/encoder/state.ts";
import { parseSpec } from "../../shared/spec.ts";

function specWith(features: unknown[]) {
  return parseSpec({
    format: "csv",
    features,
    tasks: [{ name: "click", type: "binary", column: "clicked" }],
  });
}

const WIDE = ID_FEATURE_ROWS + 20; // users: past the threshold even after minCount drops a few
const spec = specWith([
  { name: "user", type: "categorical", side: "user" },
  { name: "item", type: "categorical" },
  { name: "device", type: "categorical", side: "context" },
  { name: "price", type: "numeric", buckets: 0 },
]);

/** Users u0..u{WIDE-1} seen 2 + (i % 5) times, items i0..i{WIDE+9} once or twice, 3 devices, a missing user now and then. */
function trainingRows(): FeatureValues[] {
  const rows: FeatureValues[] = [];
  for (let i = 0; i < WIDE; i++)
    for (let k = 0; k < 2 + (i % 5); k++)
      rows.push({
        user: k === 0 && i % 7 === 0 ? "" : `u${i}`,
        item: `i${(i * 3 + k) % (WIDE + 10)}`,
        device: `d${k % 3}`,
        price: i,
      });
  return rows;
}

function feature(state: EncoderState, name: string): CategoricalState {
  return state.features.find((f) => f.name === name) as CategoricalState;
}

describe("encoder: frequency columns", () => {
  const rows = trainingRows();
  const state = fitEncoder(spec, rows);
  const encoder = compileEncoder(state);

  it("go to categoricals of over ID_FEATURE_ROWS rows, one dense column each, owned once", () => {
    const user = feature(state, "user");
    expect(user.size).toBeGreaterThan(ID_FEATURE_ROWS);
    expect(user.frequency).toBeDefined();
    expect(feature(state, "device").frequency).toBeUndefined();
    // Every dense column has exactly one owner.
    const owners = state.features.flatMap((f) => encodedColumns(f).dense).sort((a, b) => a - b);
    expect(owners).toEqual(Array.from({ length: state.denseSize }, (_, i) => i));
    expect(encodedColumns(user).dense).toEqual([user.frequency!.denseOffset]);
  });

  it("hold each value's training count; mean and std of log(1 + count) over all rows", () => {
    const user = feature(state, "user");
    const counts = new Map<string, number>();
    for (const r of rows)
      if (r.user !== "") counts.set(String(r.user), (counts.get(String(r.user)) ?? 0) + 1);
    user.vocab!.forEach((key, i) => {
      expect(user.frequency!.counts[i], key).toBe(counts.get(key));
    });
    // Missing values, and values under minCount (outside the vocabulary), count 0.
    const kept = new Set(user.vocab);
    const xs = rows.map((r) => (kept.has(String(r.user)) ? Math.log1p(counts.get(String(r.user))!) : 0));
    const mean = xs.reduce((a, x) => a + x, 0) / xs.length;
    const std = Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / xs.length);
    expect(user.frequency!.mean).toBeCloseTo(mean, 10);
    expect(user.frequency!.std).toBeCloseTo(std, 10);
    // Over the training rows the column is standardised.
    const batch = encoder.encodeRows(rows);
    const at = user.frequency!.denseOffset;
    const column = Array.from({ length: rows.length }, (_, r) => batch.dense[r * state.denseSize + at]!);
    expect(column.reduce((a, x) => a + x, 0) / column.length).toBeCloseTo(0, 5);
  });

  it("write (log(1 + count) − mean) / std; a missing or unseen value counts the fewest training read", () => {
    // Users: some rows missing, so training read a count of 0, and a missing user still does.
    expect(feature(state, "user").frequency!.least).toBeUndefined();
    // Items: every one seen twice or more, so training never read a count under the fewest.
    const { denseOffset, mean, std, counts, least } = feature(state, "item").frequency!;
    expect(least).toBe(Math.min(...counts));
    const item = feature(state, "item");
    const value = (v: unknown) =>
      encoder.encodeRows([{ user: "u1", item: v, device: "d0", price: 1 }]).dense[denseOffset]!;
    const i = 3;
    expect(value(item.vocab![i])).toBeCloseTo((Math.log1p(counts[i]!) - mean) / std, 5);
    for (const absent of ["", null, undefined, "never-seen"])
      expect(value(absent)).toBeCloseTo((Math.log1p(least!) - mean) / std, 5);
    const users = feature(state, "user").frequency!;
    const missingUser = encoder.encodeRows([{ user: "" }]).dense[users.denseOffset]!;
    expect(missingUser).toBeCloseTo(-users.mean / users.std, 5);
    // Its id is written as before.
    const ids = encoder.encodeRows([{ item: item.vocab![i] }]).ids;
    expect(ids[item.slot]).toBe(item.offset + RESERVED_IDS + i);
  });

  it("property: a request encodes like its rows flattened (user column once, item column per candidate)", () => {
    const users = feature(state, "user").vocab!;
    const items = feature(state, "item").vocab!;
    fc.assert(
      fc.property(
        fc.constantFrom(...users, "", "nobody"),
        fc.array(fc.constantFrom(...items, "", "new-item"), { minLength: 1, maxLength: 8 }),
        (user, candidates) => {
          const request = encoder.encodeRequest(
            { user: { user }, context: { device: "d1" } },
            candidates.map((item) => ({ item, price: 3 })),
          );
          const flat = encoder.encodeRows(candidates.map((item) => ({ user, item, device: "d1", price: 3 })));
          expect(Array.from(request.dense)).toEqual(Array.from(flat.dense));
          expect(Array.from(request.ids)).toEqual(Array.from(flat.ids));
        },
      ),
    );
  });

  it("the spec turns it off for an id-like feature, on for a small one", () => {
    const custom = fitEncoder(
      specWith([
        { name: "user", type: "categorical", frequency: false },
        { name: "device", type: "categorical", frequency: true },
      ]),
      rows,
    );
    expect(feature(custom, "user").frequency).toBeUndefined();
    expect(feature(custom, "device").frequency?.counts).toHaveLength(3);
    expect(custom.denseSize).toBe(1);
  });

  it("a hashed feature counts its buckets: each bucket's rows, whatever values share it", () => {
    const hashed = fitEncoder(specWith([{ name: "user", type: "categorical", hashBuckets: 150 }]), rows);
    const f = feature(hashed, "user");
    expect(f.hashBuckets).toBe(150);
    const counts = f.frequency!.counts;
    expect(counts).toHaveLength(150);
    // The encoder's own bucket of each row, counted by hand.
    const encoder = compileEncoder(hashed);
    const expected = new Array<number>(150).fill(0);
    for (const row of rows) {
      const id = encoder.encodeRows([row]).ids[f.slot]! - f.offset;
      if (id >= RESERVED_IDS) expected[id - RESERVED_IDS]!++;
    }
    expect(counts).toEqual(expected);
    // Off by default for a small hashed feature, as for a small vocabulary.
    const small = fitEncoder(specWith([{ name: "user", type: "categorical", hashBuckets: 16 }]), rows);
    expect(feature(small, "user").frequency).toBeUndefined();
    const forced = specWith([{ name: "user", type: "categorical", hashBuckets: 16, frequency: true }]);
    expect(feature(fitEncoder(forced, rows), "user").frequency?.counts).toHaveLength(16);
  });

  it("hashed: an empty bucket reads the fewest rows any training row's bucket had", () => {
    // Every user present and seen 2 to 6 times: a new user, a missing one and an empty bucket
    // would otherwise read a count of 0, below anything the network trained on.
    const present: FeatureValues[] = [];
    for (let i = 0; i < WIDE; i++) for (let k = 0; k < 2 + (i % 5); k++) present.push({ user: `u${i}` });
    const hashed = fitEncoder(specWith([{ name: "user", type: "categorical", hashBuckets: 400 }]), present);
    const user = feature(hashed, "user");
    const { counts, least, mean, std, denseOffset } = user.frequency!;
    expect(counts).toContain(0); // 400 buckets for 120 users: most stay empty
    expect(least).toBe(Math.min(...counts.filter((c) => c > 0)));
    const encode = compileEncoder(hashed);
    const column = (rows: FeatureValues[]) => Array.from(encode.encodeRows(rows).dense);
    // Every value not among the training users lands in an empty bucket or a used one.
    const strangers = Array.from({ length: 200 }, (_, i) => ({ user: `stranger${i}` }));
    const fewest = (Math.log1p(least!) - mean) / std;
    expect(Math.min(...column(strangers))).toBeCloseTo(fewest, 5);
    for (const x of column([{ user: "" }, { user: null }])) expect(x).toBeCloseTo(fewest, 5);
    // Training rows read what they read before: the column is still standardised over them.
    const trained = column(present);
    expect(trained.reduce((a, x) => a + x, 0) / trained.length).toBeCloseTo(0, 5);
    expect(denseOffset).toBe(0);
  });
});
