/**
 * The compiled encoder keeps each vocabulary and derived column in its own compact form
 * (encode.ts vocabularyIndex, derivedColumns) so the worker can let the manifest's arrays go
 * (state.ts encoderLayout): lookups give what a Map of the vocabulary gave, the frequency and
 * target columns are the same float32 values, and nothing of the state is read after compiling.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { compileEncoder, type FeatureValues, vocabularyIndex } from "../../shared/encoder/encode.ts";
import {
  type CategoricalState,
  type EncoderState,
  embeddingPools,
  encodedColumns,
  encoderLayout,
  idSlotLayout,
  MISSING_ID,
  type MultiCategoricalState,
  OOV_ID,
  RESERVED_IDS,
} from "../../shared/encoder/state.ts";

/** What the encoder looked keys up with before: a Map from each entry to its local id. */
function mapIndex(vocab: readonly unknown[]): (key: string) => number {
  const index = new Map<unknown, number>();
  vocab.forEach((key, i) => {
    index.set(key, RESERVED_IDS + i);
  });
  return (key) => index.get(key) ?? OOV_ID;
}

/** Keys a packed vocabulary could mistake for entries: neighbours joined, cut, and extended. */
function trickyKeys(vocab: readonly unknown[]): string[] {
  const strings = vocab.filter((v): v is string => typeof v === "string");
  const keys = [...strings, "", "\u0000", "null", "5", "undefined", "__proto__", "constructor"];
  for (let i = 0; i + 1 < strings.length; i++) {
    const [a, b] = [strings[i]!, strings[i + 1]!];
    keys.push(a + b, a.slice(1) + b.slice(0, 1), a.slice(0, -1), `${a} `, ` ${a}`, a.toUpperCase());
  }
  return keys;
}

const ODD_VOCABULARY = [
  "a",
  "ab",
  "abc",
  "b",
  "", // an empty string is an entry like any other
  "é",
  "e\u0301", // the same letter decomposed: a different key
  "😀",
  "\ud83d", // a lone surrogate
  "__proto__",
  "constructor",
  "0",
  "00",
  "sku-00000001",
  "sku-00000001", // repeated: the last wins, as with Map.set
  "b",
];

describe("vocabularyIndex", () => {
  it("gives a Map's local ids for odd entries, repeats and near misses", () => {
    const index = vocabularyIndex(ODD_VOCABULARY);
    const reference = mapIndex(ODD_VOCABULARY);
    for (const key of trickyKeys(ODD_VOCABULARY))
      expect(index(key), JSON.stringify(key)).toBe(reference(key));
    expect(index("b")).toBe(RESERVED_IDS + ODD_VOCABULARY.length - 1);
    expect(index("sku-00000001")).toBe(RESERVED_IDS + 14);
    expect(index("abcd")).toBe(OOV_ID);
  });

  it("matches no key to an entry that is not a string, and an empty vocabulary to nothing", () => {
    const vocab: unknown[] = ["x", 5, null, "y", true, "5"];
    const index = vocabularyIndex(vocab);
    expect(["x", "y", "5", "null", "true", "", "xy"].map(index)).toEqual([
      2,
      5,
      7,
      OOV_ID,
      OOV_ID,
      OOV_ID,
      OOV_ID,
    ]);
    expect(vocabularyIndex([])("")).toBe(OOV_ID);
  });

  it("agrees with a Map on generated vocabularies (property)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.string({ maxLength: 6 }), fc.string({ unit: "grapheme", maxLength: 4 })), {
          maxLength: 300,
        }),
        fc.array(fc.string({ maxLength: 8 }), { maxLength: 50 }),
        (vocab, extra) => {
          const index = vocabularyIndex(vocab);
          const reference = mapIndex(vocab);
          for (const key of [...trickyKeys(vocab), ...extra]) if (index(key) !== reference(key)) return false;
          return true;
        },
      ),
      { numRuns: 300 },
    );
  });

  it("finds every entry of a catalog-sized vocabulary and misses the rest", () => {
    const vocab = Array.from({ length: 100_000 }, (_, i) => `sku-${String(i).padStart(8, "0")}`);
    const index = vocabularyIndex(vocab);
    for (let i = 0; i < vocab.length; i++) if (index(vocab[i]!) !== RESERVED_IDS + i) expect.fail(vocab[i]);
    for (let i = 0; i < 10_000; i++) expect(index(`sku-${String(i).padStart(9, "0")}`)).toBe(OOV_ID);
  });
});

/** Two id-like features as a manifest has them: a vocabulary with counts and rates, and a bag. */
function catalogState(n: number): EncoderState {
  const vocab = Array.from({ length: n }, (_, i) => (i % 7 === 3 ? `ü${i}` : `u${i}`));
  const rates = (k: number) => Array.from({ length: RESERVED_IDS + n }, (_, i) => ((i * k) % 97) / 97);
  const user: CategoricalState = {
    kind: "categorical",
    name: "user",
    side: "user",
    slot: 0,
    offset: 0,
    size: RESERVED_IDS + n,
    vocab,
    frequency: { denseOffset: 0, counts: vocab.map((_, i) => 1 + ((i * 31) % 500)), mean: 2.51, std: 0.27 },
    target: {
      denseOffset: 1,
      smoothing: 20,
      tasks: [
        { task: "click", prior: 0.2, rates: rates(13), mean: 0.198, std: 0.0427 },
        { task: "buy", prior: 0.04, rates: rates(29), mean: 0.0399, std: 0.0208 },
      ],
    },
  };
  const tags: MultiCategoricalState = {
    kind: "multi_categorical",
    name: "tags",
    side: "item",
    separator: "|",
    slot: 1,
    maxValues: 2,
    denseOffset: 3,
    offset: user.size,
    size: RESERVED_IDS + 3,
    vocab: ["red", "green", "blue"],
  };
  return {
    version: 1,
    trim: true,
    missing: ["", "NA"],
    features: [user, tags],
    denseSize: 5,
    idSlots: 3,
    vocabSize: user.size + tags.size,
  };
}

/** Rows over known, unknown and missing values. */
function rowsOf(n: number): FeatureValues[] {
  return Array.from({ length: 400 }, (_, r) => ({
    user: r % 9 === 0 ? "NA" : r % 5 === 0 ? `v${r}` : `${r % 7 === 3 ? "ü" : "u"}${(r * 37) % n}`,
    tags: ["red|blue", "green", "", "red|green|blue", "pink"][r % 5],
  }));
}

describe("compiled categorical columns", () => {
  const n = 5_000;

  it("are the float32 values of the manifest's formulas, by local id", () => {
    const state = catalogState(n);
    const user = state.features[0] as CategoricalState;
    const batch = compileEncoder(state).encodeRows(rowsOf(n));
    const lookup = mapIndex(user.vocab!);
    const { counts, mean, std } = user.frequency!;
    rowsOf(n).forEach((row, r) => {
      const key = row.user === "NA" ? null : (row.user as string);
      const id = key === null ? MISSING_ID : lookup(key);
      expect(batch.ids[r * state.idSlots]).toBe(id);
      const count = id >= RESERVED_IDS ? counts[id - RESERVED_IDS]! : 0;
      const dense = Array.from(batch.dense.subarray(r * state.denseSize, r * state.denseSize + 3));
      expect(dense).toEqual([
        Math.fround((Math.log1p(count) - mean) / std),
        ...user.target!.tasks.map((t) => Math.fround((t.rates[id]! - t.mean) / t.std)),
      ]);
    });
  });

  it("read nothing of the state once compiled: its arrays can go", () => {
    const state = catalogState(n);
    const rows = rowsOf(n);
    const encoder = compileEncoder(state);
    const before = encoder.encodeRows(rows);
    const request = encoder.encodeRequest({ user: rows[1]! }, rows.slice(0, 20));
    for (const f of state.features as (CategoricalState | MultiCategoricalState)[]) {
      f.vocab!.fill("gone");
      f.vocab!.length = 0;
      if (f.kind !== "categorical") continue;
      f.frequency!.counts.length = 0;
      for (const t of f.target!.tasks) t.rates.length = 0;
    }
    const after = encoder.encodeRows(rows);
    expect(after.ids).toEqual(before.ids);
    expect(after.dense).toEqual(before.dense);
    expect(encoder.encodeRequest({ user: rows[1]! }, rows.slice(0, 20))).toEqual(request);
  });
});

describe("encoderLayout", () => {
  it("is the state less its vocabularies, counts and rates, and leaves the state as it was", () => {
    const state = catalogState(50);
    const copy = structuredClone(state);
    const layout = encoderLayout(state);
    expect(state).toEqual(copy);
    expect(JSON.stringify(layout)).not.toMatch(/"(vocab|counts|rates)"/);
    const user = copy.features[0] as CategoricalState;
    expect(layout.features[0]).toEqual({
      kind: "categorical",
      name: "user",
      side: "user",
      slot: 0,
      offset: 0,
      size: user.size,
      frequency: { denseOffset: 0, mean: 2.51, std: 0.27 },
      target: {
        denseOffset: 1,
        smoothing: 20,
        tasks: [
          { task: "click", prior: 0.2, mean: 0.198, std: 0.0427 },
          { task: "buy", prior: 0.04, mean: 0.0399, std: 0.0208 },
        ],
      },
    });
    const { vocab: _vocab, ...tags } = copy.features[1] as MultiCategoricalState;
    expect(layout.features[1]).toEqual(tags);
    expect({ ...layout, features: [] }).toEqual({ ...copy, features: [] });
    // It still says where every feature's columns are.
    expect(layout.features.map(encodedColumns)).toEqual(copy.features.map(encodedColumns));
    expect(idSlotLayout(layout)).toEqual(idSlotLayout(copy));
    expect(embeddingPools(layout)).toEqual(embeddingPools(copy));
  });
});
