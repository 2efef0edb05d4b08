/**
 * rerankRequestParser (candidate-check.ts + valibot for the rest) must give exactly what the
 * valibot schema alone gives: the same output when valid, the same issues when not.
 */
import fc from "fast-check";
import * as v from "valibot";
import { describe, expect, it } from "vitest";
import { candidatesAreValid } from "../../edge/rerank/candidate-check.ts";
import { rerankRequestParser, rerankRequestSchema } from "../../edge/rerank/schema.ts";

const HEADS = ["click", "purchase"];
const schema = rerankRequestSchema(HEADS);
const parse = rerankRequestParser(HEADS);

function agree(body: unknown): void {
  const want = v.safeParse(schema, body);
  const got = parse(body);
  expect(got.success).toBe(want.success);
  if (want.success) expect(got.output).toEqual(want.output);
  else
    expect(got.issues?.map((i) => [v.getDotPath(i), i.message])).toEqual(
      want.issues?.map((i) => [v.getDotPath(i), i.message]),
    );
}

/** JSON round trip: the worker only ever sees what JSON.parse makes. */
const json = (x: unknown): unknown => JSON.parse(JSON.stringify(x));

const scalar = fc.oneof(
  fc.string({ maxLength: 4 }),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.boolean(),
  fc.constant(null),
);
const featureValue = fc.oneof(scalar, fc.array(scalar, { maxLength: 3 }), fc.object({ maxDepth: 1 }));
const featureName = fc.oneof(
  fc.constantFrom("a", "b", "__proto__", "constructor", "prototype", "toString"),
  fc.string({ maxLength: 3 }),
);
const features = fc.oneof(
  fc.dictionary(featureName, featureValue, { maxKeys: 4 }),
  fc.constantFrom(null, [], "x", 1),
);
const candidate = fc.oneof(
  fc.record({ id: fc.string({ maxLength: 3 }), features }, { requiredKeys: ["id"] }),
  fc.record({ id: fc.oneof(fc.integer(), fc.constant(null)), features }),
  fc.record({ id: fc.string({ minLength: 1 }), features, extra: fc.integer() }),
  fc.constantFrom(null, 1, "c", []),
);

describe("rerankRequestParser", () => {
  it("agrees with valibot on valid requests, keeping the candidates as sent", () => {
    const body = json({
      user: { id: "u", features: { age: 3, tags: ["a", "b"] } },
      candidates: [
        { id: "a", features: { price: 1.5, brand: "x", flag: true, none: null, v: [0.1, 0.2] } },
        { id: "b" },
        { id: "c", features: {} },
      ],
      weights: { click: 1 },
    }) as { candidates: unknown[] };
    agree(body);
    const got = parse(body);
    if (!got.success) throw new Error("expected a valid request");
    // The same object, not valibot's copy: the fast path ran.
    expect(got.output.candidates[0]).toBe(body.candidates[0]);
    expect(candidatesAreValid(body.candidates, 1000, 4096)).toBe(true);
  });

  it("leaves reserved keys, extra keys, wrong types and long lists to valibot", () => {
    const cases: unknown[] = [
      [{ id: "a", features: JSON.parse('{"__proto__": 1}') }],
      [{ id: "a", extra: 1 }],
      [{ id: "" }],
      [{ id: 1 }],
      [{ id: "a", features: [] }],
      [{ id: "a", features: null }],
      [{ id: "a", features: { x: { y: 1 } } }],
      [{ id: "a", features: { x: [1, [2]] } }],
      [{ id: "a", features: { x: Number.NaN } }],
      [{ id: "a", features: { x: Array.from({ length: 4097 }, () => 1) } }],
      Array.from({ length: 1001 }, (_, i) => ({ id: `c${i}` })),
    ];
    for (const candidates of cases) {
      expect(candidatesAreValid(candidates, 1000, 4096)).toBe(false);
      agree({ candidates });
    }
  });

  it("agrees with valibot on 3,000 generated bodies", () => {
    fc.assert(
      fc.property(
        fc.array(candidate, { maxLength: 5 }),
        fc.option(fc.dictionary(fc.constantFrom("click", "purchase", "other"), fc.double()), {
          nil: undefined,
        }),
        fc.option(fc.integer({ min: -2, max: 5 }), { nil: undefined }),
        (candidates, weights, topK) => agree(json({ candidates, weights, topK })),
      ),
      { numRuns: 3000 },
    );
  });

  it("a large body valid but for the fields after its candidates is read up to its first mistake, not whole", () => {
    // Each pin's id is read through a getter: what the parser touches, counted. 100,000 wrong
    // pins are 100,000 issues to a parser that collects every one before it gives up.
    let reads = 0;
    const pin = () =>
      Object.defineProperty({ position: 0 }, "id", {
        enumerable: true,
        get: () => {
          reads++;
          return 5;
        },
      });
    const body = { candidates: [{ id: "a" }], pinned: Array.from({ length: 100_000 }, pin) };
    const parsed = parse(body);
    expect(parsed.success).toBe(false);
    expect(v.getDotPath(parsed.issues![0]!)).toBe("pinned.0.id");
    expect(reads).toBeLessThan(2000);
  });
});
