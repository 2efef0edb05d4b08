/** Bag (multi_categorical) and vector features in the encoder: layout, pooling weights, errors. */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { compileEncoder, FeatureValueError, type FeatureValues } from "../../shared/encoder/encode.ts";
import { DEFAULT_FIT_OPTIONS, fitEncoder } from "../../shared/encoder/fit.ts";
import {
  type EncoderState,
  embeddingPools,
  encodedColumns,
  idSlotLayout,
  MISSING_ID,
  type MultiCategoricalState,
  OOV_ID,
  RESERVED_IDS,
  type VectorState,
} from "../../shared/encoder/state.ts";
import { parseSpec, SpecError } from "../../shared/spec.ts";

const spec = parseSpec({
  format: "csv",
  features: [
    { name: "age", type: "numeric", side: "user", buckets: 0 },
    { name: "tags", type: "multi_categorical", minCount: 1 },
    { name: "genres", type: "multi_categorical", side: "user", hashBuckets: 16, maxValues: 3 },
    { name: "vec", type: "vector", dim: 3 },
    { name: "city", type: "categorical", side: "context", minCount: 1 },
  ],
  tasks: [{ name: "click", type: "binary", column: "clicked" }],
});

const rows: FeatureValues[] = [
  { age: "30", tags: "a|b|c", genres: "x", vec: "0.5 -1 2", city: "paris" },
  { age: "40", tags: "a", genres: "", vec: "", city: "rome" },
  { age: "50", tags: "", genres: "y|z", vec: "1 1 1", city: "paris" },
];

function bag(state: EncoderState, name: string): MultiCategoricalState {
  return state.features.find((f) => f.name === name) as MultiCategoricalState;
}

/** A row's ids and weights of one bag, ids local to the feature's block. */
function readBag(
  state: EncoderState,
  f: MultiCategoricalState,
  batch: { dense: Float32Array; ids: Int32Array },
  r = 0,
) {
  const ids = Array.from(
    { length: f.maxValues },
    (_, i) => batch.ids[r * state.idSlots + f.slot + i]! - f.offset,
  );
  const weights = Array.from(
    { length: f.maxValues },
    (_, i) => batch.dense[r * state.denseSize + f.denseOffset + i]!,
  );
  return { ids, weights };
}

describe("encoder: layout of bag and vector features", () => {
  const state = fitEncoder(spec, rows);

  it("fits maxValues to the longest training bag unless the spec sets it", () => {
    expect(bag(state, "tags").maxValues).toBe(3);
    expect(bag(state, "genres").maxValues).toBe(3);
    const long = fitEncoder(spec, [{ tags: Array.from({ length: 50 }, (_, i) => `t${i}`) }]);
    expect(bag(long, "tags").maxValues).toBe(DEFAULT_FIT_OPTIONS.maxValues);
  });

  it("gives every dense column and id slot exactly one owner, and pools to each bag", () => {
    const dense = state.features.flatMap((f) => encodedColumns(f).dense).sort((a, b) => a - b);
    const ids = state.features.flatMap((f) => encodedColumns(f).ids).sort((a, b) => a - b);
    expect(dense).toEqual(Array.from({ length: state.denseSize }, (_, i) => i));
    expect(ids).toEqual(Array.from({ length: state.idSlots }, (_, i) => i));
    // numeric 2 + tags 3 + genres 3 + vec 3+1
    expect(state.denseSize).toBe(12);
    expect(state.idSlots).toBe(3 + 3 + 1);
    expect(idSlotLayout(state).map((s) => s.feature)).toEqual([
      "tags",
      "tags",
      "tags",
      "genres",
      "genres",
      "genres",
      "city",
    ]);
    expect(embeddingPools(state)).toEqual([
      { slot: 0, count: 3, weights: bag(state, "tags").denseOffset },
      { slot: 3, count: 3, weights: bag(state, "genres").denseOffset },
    ]);
    expect(bag(state, "tags").vocab).toEqual(["a", "b", "c"]);
    expect(bag(state, "genres").size).toBe(RESERVED_IDS + 16);
  });
});

describe("encoder: bags", () => {
  const state = fitEncoder(spec, rows);
  const tags = bag(state, "tags");

  it("weights each kept value 1/k, pads with the missing id at weight 0", () => {
    const batch = compileEncoder(state).encodeRows([{ tags: "b|zzz" }]);
    expect(readBag(state, tags, batch)).toEqual({
      ids: [RESERVED_IDS + 1, OOV_ID, MISSING_ID],
      weights: [0.5, 0.5, 0],
    });
  });

  it("reads an empty or missing bag as the missing id with weight 1", () => {
    const batch = compileEncoder(state).encodeRows([{ tags: "" }, { tags: "NA" }, {}, { tags: [] }]);
    for (let r = 0; r < 4; r++)
      expect(readBag(state, tags, batch, r)).toEqual({ ids: [0, 0, 0], weights: [1, 0, 0] });
  });

  it("drops values past maxValues and counts them", () => {
    const encoder = compileEncoder(state);
    const batch = encoder.encodeRows([{ tags: "a|b|c|a|b" }, { tags: ["c", "c", "c", "c"] }]);
    expect(readBag(state, tags, batch).ids).toEqual([2, 3, 4]);
    expect(encoder.dropped).toEqual({ tags: 3, genres: 0 });
  });

  it("property: arrays and separated strings encode alike; weights sum to 1; ids stay in the block", () => {
    const encoder = compileEncoder(state);
    const key = fc.constantFrom("a", "b", "c", "q", " a ", "NA", "?", "7");
    fc.assert(
      fc.property(fc.array(key, { maxLength: 6 }), (values) => {
        const asArray = encoder.encodeRows([{ tags: values }]);
        const asText = encoder.encodeRows([{ tags: values.join("|") }]);
        expect([...asArray.ids]).toEqual([...asText.ids]);
        expect([...asArray.dense]).toEqual([...asText.dense]);
        const { ids, weights } = readBag(state, tags, asArray);
        const kept = values.filter((v) => !["NA", "?"].includes(v.trim())).length;
        expect(weights.filter((w) => w > 0).length).toBe(Math.max(1, Math.min(kept, tags.maxValues)));
        expect(weights.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
        for (const id of ids) expect(id >= 0 && id < tags.size).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it("hashes bag values into the feature's buckets", () => {
    const genres = bag(state, "genres");
    const batch = compileEncoder(state).encodeRows([{ genres: "x|y|x" }]);
    const { ids, weights } = readBag(state, genres, batch);
    expect(ids[0]).toBe(ids[2]);
    expect(ids.every((id) => id >= RESERVED_IDS && id < genres.size)).toBe(true);
    expect(weights.map((w) => Math.fround(w))).toEqual([1, 1, 1].map((x) => Math.fround(x / 3)));
  });
});

describe("encoder: vectors", () => {
  const state = fitEncoder(spec, rows);
  const vec = state.features.find((f) => f.name === "vec") as VectorState;
  const read = (batch: { dense: Float32Array }, r = 0) =>
    Array.from(
      batch.dense.subarray(r * state.denseSize + vec.denseOffset, r * state.denseSize + vec.denseOffset + 4),
    );

  it("standardises each element by its training mean and std (string or array); zeros and the missing flag when absent", () => {
    // Fitted on the two rows that have the vector: "0.5 -1 2" and "1 1 1" (the missing one is left out).
    expect(vec.mean).toEqual([0.75, 0, 1.5]);
    expect(vec.std!.map((s) => s * Math.SQRT2)).toEqual([0.5, 2, 1].map((d) => expect.closeTo(d, 12)));
    expect(vec.clip).toBe(DEFAULT_FIT_OPTIONS.clip);
    const batch = compileEncoder(state).encodeRows([
      { vec: " 0.5  -1 2 " },
      { vec: [0.5, -1, 2] },
      { vec: ["0.5", "-1", "2"] },
      { vec: "?" },
      {},
    ]);
    const z = Math.fround(Math.SQRT1_2);
    for (const r of [0, 1, 2]) expect(read(batch, r)).toEqual([-z, -z, z, 0]);
    expect(read(batch, 3)).toEqual([0, 0, 0, 1]);
    expect(read(batch, 4)).toEqual([0, 0, 0, 1]);
  });

  it("clips a standardised element to ±clip, so a hostile request's 3e38 reaches the network as 8", () => {
    const batch = compileEncoder(state).encodeRows([{ vec: [3e38, -3e38, 1.5] }]);
    expect(read(batch)).toEqual([8, -8, 0, 0]);
  });

  it('writes the numbers as given with "scaling": "none", and for a state fitted without scaling', () => {
    const none = parseSpec({
      ...spec,
      features: spec.features.map((f) => (f.type === "vector" ? { ...f, scaling: "none" } : f)),
    });
    const asGiven = fitEncoder(none, rows);
    const { mean: _mean, std: _std, clip: _clip, ...old } = vec;
    const before = { ...state, features: state.features.map((f) => (f === vec ? old : f)) };
    for (const s of [asGiven, before]) {
      const f = s.features.find((x) => x.name === "vec") as VectorState;
      expect(f.mean).toBeUndefined();
      const batch = compileEncoder(s).encodeRows([{ vec: "0.5 -1 2" }, { vec: [-0, 3e38, 1] }]);
      expect(read(batch, 0)).toEqual([0.5, -1, 2, 0]);
      expect(read(batch, 1)).toEqual([0, Math.fround(3e38), 1, 0]);
    }
  });

  it("refuses, when compiling, scaling arrays that do not fit the vector", () => {
    const broken = (change: Partial<VectorState>) => ({
      ...state,
      features: state.features.map((f) => (f === vec ? { ...vec, ...change } : f)),
    });
    for (const change of [{ mean: [0, 0] }, { std: [1, 0, 1] }, { std: [1, Number.NaN, 1] }, { clip: 0 }])
      expect(() => compileEncoder(broken(change))).toThrow(
        'encoder state: features[3] "vec": mean and std must each hold 3 finite numbers (std > 0), with a clip > 0',
      );
  });

  it("encodes the training rows to mean 0 and std 1 per element (property)", () => {
    const moments = (xs: readonly number[]) => {
      const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
      return { mean, variance: xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1) };
    };
    const vectorSpec = parseSpec({
      format: "csv",
      features: [{ name: "v", type: "vector", dim: 2 }],
      tasks: [{ name: "click", type: "binary", column: "y" }],
    });
    const element = fc.double({ min: -1e6, max: 1e6, noNaN: true });
    fc.assert(
      fc.property(
        fc.array(fc.tuple(element, element, fc.double({ min: 1e-3, max: 1e3, noNaN: true })), {
          minLength: 20,
          maxLength: 60,
        }),
        (xs) => {
          // Spread the second element so it is never constant; clipping at 8 std cannot bite on < 65 rows.
          const training = xs.map(([a, b, c], i) => ({ v: [a, b + i * c] }));
          const s = fitEncoder(vectorSpec, training);
          const batch = compileEncoder(s).encodeRows(training);
          for (const e of [0, 1]) {
            const column = Array.from(
              { length: training.length },
              (_, r) => batch.dense[r * s.denseSize + e]!,
            );
            // An element whose std is under 1e-12 counts as constant: it is only centred.
            const spread = moments(training.map((t) => t.v[e]!)).variance > 1e-20;
            const { mean, variance } = moments(column);
            expect(Math.abs(mean)).toBeLessThan(1e-4);
            if (spread) expect(Math.abs(variance - 1)).toBeLessThan(1e-3);
          }
        },
      ),
      { numRuns: 100, seed: 7 },
    );
  });

  it("refuses a vector of the wrong length or with a non-number, naming the feature", () => {
    const encoder = compileEncoder(state);
    expect(() => encoder.encodeRows([{ vec: "1 2" }])).toThrow('feature "vec": expected 3 numbers, got 2');
    expect(() => encoder.encodeRows([{ vec: [1, 2, 3, 4] }])).toThrow(FeatureValueError);
    expect(() => encoder.encodeRows([{ vec: "1 x 3" }])).toThrow(/feature "vec": element 1: "x"/);
    expect(() => encoder.encodeRows([{ vec: [1, null, 3] }])).toThrow(/element 1/);
    expect(() => encoder.encodeRows([{ vec: 5 }])).toThrow(/expected 3 numbers, got number/);
  });

  it("says which candidate of a request holds the bad vector", () => {
    const encoder = compileEncoder(state);
    let caught: unknown;
    try {
      encoder.encodeRequest({}, [{ vec: "1 2 3" }, { vec: "1 2" }]);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(FeatureValueError);
    expect((caught as FeatureValueError).at).toBe(1);
    expect((caught as FeatureValueError).feature).toBe("vec");
  });

  it("encodes a request like its rows flattened, with bags and vectors on both sides", () => {
    const encoder = compileEncoder(state);
    const user = { age: 33, genres: ["x", "y"] };
    const context = { city: "rome" };
    const items = [{ tags: "a|c", vec: [1, 2, 3] }, { tags: null }, {}];
    const request = encoder.encodeRequest({ user, context }, items);
    const flat = encoder.encodeRows(items.map((item) => ({ ...user, ...context, ...item })));
    expect([...request.ids]).toEqual([...flat.ids]);
    expect([...request.dense]).toEqual([...flat.dense]);
  });
});

describe("encoder: features named like Object.prototype's properties", () => {
  it("reads a request that leaves them out as missing, not as the prototype's functions", () => {
    const named = parseSpec({
      format: "jsonl",
      features: [
        { name: "valueOf", type: "numeric", buckets: 0 },
        { name: "toString", type: "categorical", minCount: 1 },
      ],
      tasks: [{ name: "click", type: "binary", column: "y" }],
    });
    const state = fitEncoder(named, [
      JSON.parse('{"valueOf":1,"toString":"a"}'),
      JSON.parse('{"valueOf":3,"toString":"b"}'),
      JSON.parse('{"toString":"b"}'),
    ]);
    const encoder = compileEncoder(state);
    // Parsed JSON, as the worker's request bodies are: both keys absent, the prototype's present.
    const batch = encoder.encodeRequest(JSON.parse('{"user":{},"context":{}}'), [JSON.parse("{}")]);
    const missing = encoder.encodeRows([{ valueOf: null, toString: null }]);
    expect([...batch.dense]).toEqual([...missing.dense]);
    expect([...batch.ids]).toEqual([...missing.ids]);
    expect(batch.dense[1]).toBe(1); // the missing indicator
  });
});

describe("dataset spec: bag and vector separators", () => {
  const base = { format: "csv", tasks: [{ name: "click", type: "binary", column: "y" }] };

  it("refuses a separator equal to the CSV delimiter, naming the feature", () => {
    expect(() =>
      parseSpec({ ...base, features: [{ name: "tags", type: "multi_categorical", separator: "," }] }),
    ).toThrow(new SpecError('dataset spec: features.tags.separator: "," is the CSV delimiter; pick another'));
    expect(() =>
      parseSpec({ ...base, delimiter: "|", features: [{ name: "tags", type: "multi_categorical" }] }),
    ).toThrow(/features\.tags\.separator: "\|" is the CSV delimiter/);
  });

  it("refuses an empty separator and a vector without dim", () => {
    expect(() =>
      parseSpec({ ...base, features: [{ name: "v", type: "vector", dim: 2, separator: "" }] }),
    ).toThrow(/separator/);
    expect(() => parseSpec({ ...base, features: [{ name: "v", type: "vector" }] })).toThrow(/dim/);
  });
});
