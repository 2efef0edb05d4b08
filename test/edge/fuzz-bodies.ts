/**
 * Arbitrary POST /v1/rerank bodies: half valid by construction (so the model runs on odd but
 * legal input: unseen ids, extreme numbers, missing features, duplicates, ties), the rest
 * mutated or wild (wrong types, unknown fields, broken JSON).
 */
import fc from "fast-check";
import type { FeatureState } from "../../shared/encoder/state.ts";
import { headNames, manifest } from "./requests.ts";

const features = manifest.features.features;
const side = (f: FeatureState) => f.side ?? "item";

/** Values a client might put anywhere: right types, wrong types, edge numbers, nesting. */
export const anyValue = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.double(),
  fc.integer(),
  fc.boolean(),
  fc.constant(null),
  fc.constantFrom(Number.MAX_VALUE, -0, 1e308, "NaN", "", "__proto__", "constructor"),
  fc.array(fc.integer(), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 4 }), fc.integer(), { maxKeys: 2 }),
);

/** A legal value for feature `f`: known vocabulary, unseen strings, any finite number, null. */
function legalValue(f: FeatureState) {
  const known =
    f.kind === "categorical" && f.vocab && f.vocab.length > 0 ? [fc.constantFrom(...f.vocab)] : [];
  const number = fc.double({ noNaN: true, noDefaultInfinity: true });
  return fc.oneof(
    ...known,
    fc.string({ maxLength: 8 }),
    // An integer beyond 2^53 is no legal id: JSON has rounded it (a 400 of its own, features.test.ts).
    f.kind === "categorical" || f.kind === "multi_categorical"
      ? number.filter((x) => !Number.isInteger(x) || Number.isSafeInteger(x))
      : number,
    fc.boolean(),
    fc.constant(null),
  );
}

function legalFeatures(which: string) {
  const own = features.filter((f) => side(f) === which);
  return fc.record(Object.fromEntries(own.map((f) => [f.name, legalValue(f)])), { requiredKeys: [] });
}

const validCandidate = fc.record({
  id: fc.oneof(fc.constantFrom("c0", "c1", "c2", "c3"), fc.string({ minLength: 1, maxLength: 6 })),
  features: legalFeatures("item"),
});

const validBody = fc.record(
  {
    user: fc.record(
      { id: fc.string({ maxLength: 8 }), features: legalFeatures("user") },
      { requiredKeys: [] },
    ),
    context: fc.record({ features: legalFeatures("context") }, { requiredKeys: [] }),
    candidates: fc.array(validCandidate, { maxLength: 25 }),
    weights: fc.dictionary(
      fc.constantFrom(...headNames),
      fc.oneof(fc.double({ min: 0, max: 1e6, noNaN: true }), fc.nat(5)),
    ),
    fusion: fc.constantFrom("sum", "product"),
    topK: fc.nat(40),
    explain: fc.boolean(),
    filters: fc.array(
      fc.oneof(
        fc.record({
          field: fc.constantFrom(...features.map((f) => f.name)),
          op: fc.constantFrom("lt", "lte", "gt", "gte"),
          value: fc.double({ noNaN: true, noDefaultInfinity: true }),
        }),
        fc.record({
          field: fc.constantFrom(...features.map((f) => f.name)),
          op: fc.constantFrom("in", "not_in"),
          value: fc.array(fc.oneof(fc.string({ maxLength: 4 }), fc.integer()), { maxLength: 3 }),
        }),
      ),
      { maxLength: 2 },
    ),
    pinned: fc.array(fc.record({ id: fc.constantFrom("c0", "c3", "zz"), position: fc.nat(30) }), {
      maxLength: 2,
    }),
  },
  { requiredKeys: ["candidates"] },
);

/** A valid body with one field replaced by anything, or one unknown field added. */
const mutatedBody = fc
  .tuple(
    validBody,
    fc.constantFrom(
      "user",
      "context",
      "candidates",
      "weights",
      "fusion",
      "topK",
      "explain",
      "filters",
      "pinned",
      "extra",
    ),
    anyValue,
  )
  .map(([body, key, value]) => ({ ...body, [key]: value }));

const mutatedCandidates = fc.tuple(validBody, fc.array(anyValue, { maxLength: 4 })).map(([body, junk]) => ({
  ...body,
  candidates: [...body.candidates, ...junk],
}));

const wild = fc.oneof(
  anyValue,
  fc.string({ maxLength: 40 }).map((s) => `{"candidates": ${s}`),
  fc.json(),
);

export const bodyArb = fc.oneof(
  { weight: 5, arbitrary: validBody },
  { weight: 3, arbitrary: mutatedBody },
  { weight: 1, arbitrary: mutatedCandidates },
  { weight: 1, arbitrary: wild },
);
