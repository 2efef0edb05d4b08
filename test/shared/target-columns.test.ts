/**
 * Target columns: an id-like categorical fitted with labels gets one dense column per binary
 * task, the value's positive rate shrunk towards the task's rate and standardised over the
 * training rows; the spec turns them on or off per feature; rows and requests encode them alike.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { compileEncoder, type FeatureValues } from "../../shared/encoder/encode.ts";
import { DEFAULT_FIT_OPTIONS, fitEncoder } from "../../shared/encoder/fit.ts";
import {
  type CategoricalState,
  type EncoderState,
  encodedColumns,
  ID_FEATURE_ROWS,
  MISSING_ID,
  OOV_ID,
  RESERVED_IDS,
  TARGET_SMOOTHING,
} from "../../shared/encoder/state.ts";
import { parseSpec } from "../../shared/spec.ts";

function specWith(features: unknown[]) {
  return parseSpec({
    format: "csv",
    features,
    tasks: [
      { name: "click", type: "binary", column: "clicked" },
      { name: "spend", type: "regression", column: "spent" },
      { name: "buy", type: "binary", column: "bought", given: "click" },
    ],
  });
}

const WIDE = ID_FEATURE_ROWS + 40;
const spec = specWith([
  { name: "user", type: "categorical", side: "user" },
  { name: "device", type: "categorical", side: "context" },
  { name: "price", type: "numeric", buckets: 0 },
]);

/**
 * Users u0..u{WIDE-1} seen 1 + (i % 6) times (u_i with i % 6 = 0 once: out of the vocabulary),
 * a missing user now and then; clicks likelier for even users, buys missing on some rows.
 */
function trainingData(): { rows: FeatureValues[]; labels: number[][] } {
  const rows: FeatureValues[] = [];
  const labels: number[][] = [];
  let n = 0;
  for (let i = 0; i < WIDE; i++)
    for (let k = 0; k < 1 + (i % 6); k++) {
      n++;
      rows.push({ user: n % 11 === 0 ? "" : `u${i}`, device: `d${k % 3}`, price: i });
      const click = (i % 2 === 0 ? n % 3 !== 0 : n % 4 === 0) ? 1 : 0;
      labels.push([click, n * 0.5, n % 5 === 0 ? Number.NaN : click * (n % 2)]);
    }
  return { rows, labels };
}

function feature(state: EncoderState, name: string): CategoricalState {
  return state.features.find((f) => f.name === name) as CategoricalState;
}

/** The expected shrunk rate of task column `task` over the rows whose user maps to `keyOf(row)`. */
function shrunkRate(
  rows: FeatureValues[],
  labels: number[][],
  task: number,
  matches: (row: FeatureValues) => boolean,
): number {
  let n = 0;
  let s = 0;
  let allN = 0;
  let allS = 0;
  rows.forEach((row, i) => {
    const y = labels[i]![task]!;
    if (Number.isNaN(y)) return;
    allN++;
    allS += y;
    if (!matches(row)) return;
    n++;
    s += y;
  });
  const prior = allS / allN;
  return (s + TARGET_SMOOTHING * prior) / (n + TARGET_SMOOTHING);
}

describe("encoder: target columns", () => {
  const { rows, labels } = trainingData();
  const state = fitEncoder(spec, rows, DEFAULT_FIT_OPTIONS, labels);
  const encoder = compileEncoder(state);
  const user = feature(state, "user");

  it("go to id-like categoricals, one column per binary task (regression tasks have none), owned once", () => {
    expect(user.size).toBeGreaterThan(ID_FEATURE_ROWS);
    expect(user.target?.tasks.map((t) => t.task)).toEqual(["click", "buy"]);
    expect(feature(state, "device").target).toBeUndefined();
    const owners = state.features.flatMap((f) => encodedColumns(f).dense).sort((a, b) => a - b);
    expect(owners).toEqual(Array.from({ length: state.denseSize }, (_, i) => i));
    expect(encodedColumns(user).dense).toEqual([
      user.frequency!.denseOffset,
      user.target!.denseOffset,
      user.target!.denseOffset + 1,
    ]);
  });

  it("hold each local id's shrunk rate: vocabulary entries, the missing value, the rest out of vocabulary", () => {
    const vocab = new Set(user.vocab);
    [0, 2].forEach((task, t) => {
      const { rates, prior } = user.target!.tasks[t]!;
      const labelled = labels.filter((l) => !Number.isNaN(l[task]!));
      expect(prior).toBeCloseTo(labelled.reduce((a, l) => a + l[task]!, 0) / labelled.length, 12);
      for (const [i, key] of user.vocab!.entries())
        expect(rates[RESERVED_IDS + i], key).toBeCloseTo(
          shrunkRate(rows, labels, task, (r) => r.user === key),
          6,
        );
      expect(rates[MISSING_ID]).toBeCloseTo(
        shrunkRate(rows, labels, task, (r) => r.user === ""),
        6,
      );
      expect(rates[OOV_ID]).toBeCloseTo(
        shrunkRate(rows, labels, task, (r) => r.user !== "" && !vocab.has(String(r.user))),
        6,
      );
    });
  });

  it("standardise over the training rows, and encode rows and requests alike", () => {
    const column = user.target!.denseOffset;
    const batch = encoder.encodeRows(rows);
    const xs = Array.from({ length: rows.length }, (_, r) => batch.dense[r * state.denseSize + column]!);
    const mean = xs.reduce((a, x) => a + x, 0) / xs.length;
    const std = Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / xs.length);
    expect(Math.abs(mean)).toBeLessThan(1e-4);
    expect(std).toBeCloseTo(1, 3);
    fc.assert(
      fc.property(fc.constantFrom("u2", "u3", "u0", "never-seen", "", null), (value) => {
        const row = { user: value, device: "d1", price: 3 };
        const flat = encoder.encodeRows([row]);
        const request = encoder.encodeRequest({ user: row, context: row }, [{ price: 3 }]);
        expect(Array.from(request.dense)).toEqual(Array.from(flat.dense));
        const id = flat.ids[user.slot]! - user.offset;
        const { rates, mean: m, std: s } = user.target!.tasks[0]!;
        expect(flat.dense[column]).toBeCloseTo((rates[id]! - m) / s, 5);
      }),
    );
  });

  it("need labels: fitted without them, no feature has target columns", () => {
    const unlabelled = fitEncoder(spec, rows);
    expect(unlabelled.features.some((f) => f.kind === "categorical" && f.target)).toBe(false);
    expect(unlabelled.denseSize).toBe(state.denseSize - 2);
  });

  it("follow the spec: on for a small feature, off for an id-like one", () => {
    const custom = fitEncoder(
      specWith([
        { name: "user", type: "categorical", side: "user", targetEncoding: false },
        { name: "device", type: "categorical", side: "context", targetEncoding: true },
        { name: "price", type: "numeric", buckets: 0 },
      ]),
      rows,
      DEFAULT_FIT_OPTIONS,
      labels,
    );
    expect(feature(custom, "user").target).toBeUndefined();
    const device = feature(custom, "device");
    expect(device.target?.tasks).toHaveLength(2);
    expect(device.target!.tasks[0]!.rates).toHaveLength(device.size);
  });

  it("keep every value's sums past the statistics' first growth (thousands of values)", () => {
    const many = Array.from({ length: 9000 }, (_, i) => ({ user: `v${i % 3000}`, device: "d", price: i }));
    const ys = many.map((_, i) => [i % 7 === 0 || i % 3000 < 40 ? 1 : 0, i, Number.NaN]);
    const fitted = fitEncoder(spec, many, DEFAULT_FIT_OPTIONS, ys);
    const f = feature(fitted, "user");
    expect(f.vocab).toHaveLength(3000);
    for (const key of ["v0", "v39", "v40", "v1500", "v2999"]) {
      const i = f.vocab!.indexOf(key);
      expect(f.target!.tasks[0]!.rates[RESERVED_IDS + i], key).toBeCloseTo(
        shrunkRate(many, ys, 0, (r) => r.user === key),
        6,
      );
    }
    expect(f.frequency!.counts.every((c) => c === 3)).toBe(true);
  });

  it("a hashed feature gets them by bucket: each bucket's rate over the rows whose value hashes there", () => {
    const { rows, labels } = trainingData();
    const hashed = specWith([
      { name: "user", type: "categorical", side: "user", hashBuckets: 128 },
      { name: "device", type: "categorical", side: "context" },
      { name: "price", type: "numeric", buckets: 0 },
    ]);
    const state = fitEncoder(hashed, rows, DEFAULT_FIT_OPTIONS, labels);
    const f = feature(state, "user");
    expect(f.vocab).toBeUndefined();
    expect(f.target!.tasks.map((t) => t.task)).toEqual(["click", "buy"]);
    const encoder = compileEncoder(state);
    const bucketOf = (row: FeatureValues) => encoder.encodeRows([row]).ids[f.slot]! - f.offset;
    for (const b of [0, 1, 7, 64, 127]) {
      const id = RESERVED_IDS + b;
      expect(f.target!.tasks[0]!.rates[id], `bucket ${b}`).toBeCloseTo(
        shrunkRate(rows, labels, 0, (r) => r.user !== "" && bucketOf(r) === id),
        6,
      );
    }
    // The missing value keeps a rate of its own; no value is out of vocabulary when hashed.
    expect(f.target!.tasks[0]!.rates[MISSING_ID]).toBeCloseTo(
      shrunkRate(rows, labels, 0, (r) => r.user === ""),
      6,
    );
    // A request reads its bucket's standardised rate.
    const batch = encoder.encodeRows([{ user: "u3" }]);
    const { rates, mean, std } = f.target!.tasks[0]!;
    expect(batch.dense[f.target!.denseOffset]).toBeCloseTo(
      (rates[bucketOf({ user: "u3" })]! - mean) / std,
      5,
    );
  });
});
