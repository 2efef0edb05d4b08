/** edge/proxy/exact-json.ts: the token scan agrees with reading every number's source text. */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseExactJson } from "../../edge/proxy/exact-json.ts";

/**
 * The reference: JSON.parse's reviver with each number's source text (V8 11.4+), exact when every
 * number's shortest form equals its literal's value, digit for digit.
 */
function reference(text: string): unknown {
  let exact = true;
  const value: unknown = JSON.parse(text, (_key, v: unknown, context?: { source?: string }) => {
    if (typeof v === "number" && context?.source !== undefined && exact)
      exact = Number.isFinite(v) && sameDecimal(context.source, String(v));
    return v;
  });
  return exact ? value : undefined;
}

/** Two decimal literals with the same value: compared as exact rationals via BigInt. */
function sameDecimal(a: string, b: string): boolean {
  const parse = (s: string) => {
    const m = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(s)!;
    const frac = m[3] ?? "";
    const digits = BigInt(`${m[2]}${frac}`);
    return { sign: digits === 0n ? "" : m[1]!, digits, exp: Number(m[4] ?? 0) - frac.length };
  };
  const x = parse(a);
  const y = parse(b);
  if (x.sign !== y.sign) return false;
  const shift = Math.min(x.exp, y.exp);
  return x.digits * 10n ** BigInt(x.exp - shift) === y.digits * 10n ** BigInt(y.exp - shift);
}

/** JSON number literals of every shape: 1-25 digits, a fraction, an exponent, a sign. */
const literal = fc
  .tuple(
    fc.boolean(),
    fc.stringMatching(/^(0|[1-9]\d{0,24})$/),
    fc.option(fc.stringMatching(/^\d{1,20}$/)),
    fc.option(fc.integer({ min: -400, max: 400 })),
  )
  .map(
    ([negative, int, frac, exp]) =>
      `${negative ? "-" : ""}${int}${frac === null ? "" : `.${frac}`}${exp === null ? "" : `e${exp}`}`,
  );

describe("exact JSON", () => {
  it("property: agrees with the per-number reference on every body, digits inside strings ignored", () => {
    fc.assert(
      fc.property(
        fc.array(literal, { minLength: 1, maxLength: 6 }),
        fc.array(fc.oneof(fc.string(), literal), { maxLength: 3 }),
        (numbers, strings) => {
          const body = `{"items":[${numbers.map((n) => `{"n":${n}}`).join(",")}],"s":${JSON.stringify(strings)}}`;
          expect(parseExactJson(body)).toEqual(reference(body));
        },
      ),
      { numRuns: 3000, seed: 11 },
    );
  });

  it("passes on what survives, refuses what would not", () => {
    expect(
      parseExactJson('{"a":[1.5,-0,123456789012345,1e3,20.990000000000002,"10000000000000001"]}'),
    ).toEqual({
      a: [1.5, -0, 123456789012345, 1000, 20.990000000000002, "10000000000000001"],
    });
    expect(parseExactJson('{"sku":10000000000000001}')).toBeUndefined();
    expect(parseExactJson('{"p":1e400}')).toBeUndefined();
    expect(parseExactJson('{"p":0.10000000000000001}')).toBeUndefined();
    expect(parseExactJson('{"p":9007199254740993}')).toBeUndefined();
    expect(parseExactJson('{"s":"a \\" 10000000000000001 \\\\","p":1}')).toEqual({
      s: 'a " 10000000000000001 \\',
      p: 1,
    });
  });
});
