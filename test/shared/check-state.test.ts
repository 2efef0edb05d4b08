/**
 * An encoder state is checked before it is compiled: a manifest's state that would write outside
 * its row, share a column, or write NaN or ±Infinity is refused, naming the feature and field.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import encoderFixture from "../../fixtures/encoder/encoder-fixture.json";
import featuresManifest from "../../fixtures/model-features/manifest.json";
import { EncoderStateError } from "../../shared/encoder/check-state.ts";
import { compileEncoder, type FeatureValues } from "../../shared/encoder/encode.ts";
import { fitEncoder } from "../../shared/encoder/fit.ts";
import type { EncoderState } from "../../shared/encoder/state.ts";
import { parseSpec } from "../../shared/spec.ts";

const fixtureState = encoderFixture.state as unknown as EncoderState;
const featuresState = featuresManifest.features as unknown as EncoderState;
const fixtureRows = encoderFixture.rows as FeatureValues[];

/** A deep copy with one change, made by `edit` on the copy. */
function edited(
  state: EncoderState,
  edit: (s: EncoderState & Record<string, unknown>) => void,
): EncoderState {
  const copy = structuredClone(state) as EncoderState & Record<string, unknown>;
  edit(copy);
  return copy;
}
const feature = (s: EncoderState, name: string) =>
  s.features.find((f) => f.name === name) as unknown as Record<string, unknown>;
const refusal = (s: EncoderState) => {
  try {
    compileEncoder(s);
  } catch (error) {
    if (error instanceof EncoderStateError) return error.message;
    throw error;
  }
  return undefined;
};

describe("encoder state check", () => {
  it("passes every state the encoder fits, and the fixtures' states", () => {
    const spec = parseSpec({
      format: "csv",
      features: [
        { name: "n", type: "numeric" },
        { name: "id", type: "categorical" },
        { name: "h", type: "categorical", hashBuckets: 8 },
        { name: "bag", type: "multi_categorical" },
        { name: "v", type: "vector", dim: 2 },
        { name: "raw", type: "vector", dim: 1, scaling: "none" },
      ],
      tasks: [{ name: "y", type: "binary", column: "y" }],
    });
    const rows = Array.from({ length: 400 }, (_, i) => ({
      n: String(i % 37),
      id: `u${i % 150}`,
      h: `h${i}`,
      bag: `a|b${i % 3}`,
      v: [i, -i],
      raw: [i],
    }));
    const labels = rows.map((_, i) => [i % 3 === 0 ? 1 : 0]);
    const fitted = fitEncoder(spec, rows, undefined, labels);
    expect(fitted.version).toBe(2);
    for (const s of [fitted, fixtureState, featuresState]) expect(refusal(s)).toBeUndefined();
  });

  it("refuses layouts that write outside a row or into another feature's columns", () => {
    const cases: [(s: EncoderState & Record<string, unknown>) => void, RegExp][] = [
      [
        (s) => {
          feature(s, "age").denseOffset = s.denseSize - 1;
        },
        /"age": dense column \d+ is outside 0\.\.\d+/,
      ],
      [
        (s) => {
          feature(s, "price").denseOffset = feature(s, "age").denseOffset;
        },
        /dense column \d+ is written by another feature too/,
      ],
      [
        (s) => {
          feature(s, "category").slot = s.idSlots;
        },
        /"category": id slot \d+ is outside/,
      ],
      [
        (s) => {
          feature(s, "category").slot = feature(s, "device").slot;
        },
        /id slot \d+ is written by another feature too/,
      ],
      [
        (s) => {
          feature(s, "category").offset = s.vocabSize - 1;
        },
        /"category": embedding rows .* do not fit the table's \d+/,
      ],
      [
        (s) => {
          feature(s, "category").offset = feature(s, "device").offset;
        },
        /share embedding rows/,
      ],
      [
        (s) => {
          s.denseSize = -1;
        },
        /denseSize must be a whole number from 0 to 1048576, got -1/,
      ],
      [
        (s) => {
          s.version = 3 as 1;
        },
        /version 3 is not one this mtrank reads \(1, 2\)/,
      ],
      [
        (s) => {
          feature(s, "interests").maxValues = 1e9;
        },
        /"interests": 1000000000 columns do not fit a row of \d+/,
      ],
      [
        (s) => {
          feature(s, "item_vec").dim = 2 ** 30;
        },
        /"item_vec": .* do not fit a row of \d+|"item_vec": mean and std/,
      ],
      [
        (s) => {
          feature(s, "age").kind = "text";
        },
        /kind "text" is not one this mtrank reads/,
      ],
    ];
    for (const [edit, message] of cases) expect(refusal(edited(fixtureState, edit))).toMatch(message);
  });

  it("refuses statistics that would write NaN, ±Infinity or a wrong value into every row", () => {
    const cases: [(s: EncoderState & Record<string, unknown>) => void, RegExp][] = [
      // JSON writes NaN as null: a manifest whose mean was NaN reads null.
      [
        (s) => {
          feature(s, "age").mean = null;
        },
        /"age": mean must be a finite number, got null/,
      ],
      [
        (s) => {
          feature(s, "age").std = 0;
        },
        /"age": std must be a finite number > 0, got 0/,
      ],
      [
        (s) => {
          feature(s, "age").clip = -1;
        },
        /clip must be a finite number > 0/,
      ],
      [
        (s) => {
          feature(s, "age").range = [5, 1];
        },
        /range must be two finite numbers, low ≤ high/,
      ],
      [
        (s) => {
          feature(s, "age").seen = "sometimes";
        },
        /"age": seen must be "values" or "missing", got "sometimes"/,
      ],
      [
        (s) => {
          feature(s, "item_vec").seen = 1;
        },
        /"item_vec": seen must be "values" or "missing", got 1/,
      ],
      [
        (s) => (feature(s, "price").buckets as { boundaries: number[] }).boundaries.reverse(),
        /"price": buckets\.boundaries must be finite numbers in ascending order/,
      ],
      [
        (s) => {
          feature(s, "category").vocab = ["a", 7];
        },
        /"category": vocab must be an array of strings/,
      ],
      [
        (s) => {
          feature(s, "category").size = 3;
        },
        /"category": size 3 is not 2 \+ \d+ rows/,
      ],
      [(s) => delete feature(s, "item_id").hashBuckets, /needs a vocab .* or hashBuckets/],
      [
        (s) => {
          feature(s, "interests").maxValues = 0;
        },
        /"interests": maxValues must be a whole number ≥ 1/,
      ],
      [
        (s) => {
          feature(s, "item_vec").std = [1, 1];
        },
        /"item_vec": mean and std must each hold 3 finite numbers/,
      ],
    ];
    for (const [edit, message] of cases) expect(refusal(edited(fixtureState, edit))).toMatch(message);

    const derived: [(f: Record<string, unknown>) => void, RegExp][] = [
      [
        (f) => (f.frequency as { counts: number[] }).counts.pop(),
        /"user_id": frequency\.counts must hold one count per vocab entry or bucket/,
      ],
      [
        (f) => {
          (f.frequency as { std: number }).std = 1e-300;
        },
        /frequency: mean .* and std 1e-300 standardise its values beyond float32's range/,
      ],
      [
        (f) => {
          (f.frequency as { least: number }).least = -1;
        },
        /"user_id": frequency\.least must be a number from 0 to the largest count \(\d+\), got -1/,
      ],
      [
        (f) => {
          (f.frequency as { least: number }).least = 1e12;
        },
        /frequency\.least must be a number from 0 to the largest count/,
      ],
      [
        (f) => (f.target as { tasks: { rates: number[] }[] }).tasks[0]!.rates.pop(),
        /target\.tasks\[0\]\.rates must hold 2 \+ one rate per vocab entry or bucket/,
      ],
      [
        (f) => {
          (f.target as { tasks: { rates: number[] }[] }).tasks[0]!.rates[3] = 1.5;
        },
        /rates must be numbers in \[0, 1\]/,
      ],
    ];
    for (const [edit, message] of derived)
      expect(refusal(edited(featuresState, (s) => edit(feature(s, "user_id"))))).toMatch(message);
  });

  it("property: a state the check lets through encodes finite values, ids inside the table, each row on its own", () => {
    // Every number in the state, by its path: the candidates for a corrupted value.
    const paths: (string | number)[][] = [];
    const walk = (x: unknown, path: (string | number)[]) => {
      if (typeof x === "number") paths.push(path);
      else if (Array.isArray(x)) for (const [i, v] of x.slice(0, 4).entries()) walk(v, [...path, i]);
      else if (x && typeof x === "object") for (const [k, v] of Object.entries(x)) walk(v, [...path, k]);
    };
    walk(fixtureState, []);
    const corrupt = fc.oneof(
      fc.constantFrom(null, Number.NaN, -1, 0, 1e-300, 1e300, 2.5, "7", 2 ** 31),
      fc.integer({ min: -3, max: 3 }).map((d) => ({ shift: d })),
    );
    let refused = 0;
    fc.assert(
      fc.property(fc.constantFrom(...paths), corrupt, (path, value) => {
        const state = edited(fixtureState, (s) => {
          let at = s as unknown as Record<string | number, unknown>;
          for (const key of path.slice(0, -1)) at = at[key] as Record<string | number, unknown>;
          const last = path.at(-1)!;
          at[last] = typeof value === "object" && value ? (at[last] as number) + value.shift : value;
        });
        let encoder: ReturnType<typeof compileEncoder>;
        try {
          encoder = compileEncoder(state);
        } catch (error) {
          if (!(error instanceof EncoderStateError)) throw error;
          refused++;
          return;
        }
        const rows = fixtureRows.filter((row) => {
          try {
            encoder.encodeRows([row]);
            return true;
          } catch {
            return false; // a value the changed state reads differently (a vector's length)
          }
        });
        const batch = encoder.encodeRows(rows);
        expect(batch.dense.every(Number.isFinite)).toBe(true);
        expect(batch.ids.every((id) => id >= 0 && id < state.vocabSize)).toBe(true);
        rows.forEach((row, r) => {
          const one = encoder.encodeRows([row]);
          const { denseSize, idSlots } = state;
          expect([...batch.dense.subarray(r * denseSize, (r + 1) * denseSize)]).toEqual([...one.dense]);
          expect([...batch.ids.subarray(r * idSlots, (r + 1) * idSlots)]).toEqual([...one.ids]);
        });
      }),
      { numRuns: 400, seed: 11 },
    );
    // The property ran on both sides of the check.
    expect(refused).toBeGreaterThan(50);
    expect(refused).toBeLessThan(400);
  });
});
