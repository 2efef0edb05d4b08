/** readableJson: JSON.stringify's meaning, with arrays of plain values on one line. */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { readableJson } from "../../trainer/core/readable-json.ts";

describe("readableJson", () => {
  it("parses to what JSON.stringify's text parses to, for any value", () => {
    const values = fc.oneof(
      fc.jsonValue(),
      fc.anything({ withDate: true, withTypedArray: true, withNullPrototype: true, withSparseArray: true }),
    );
    fc.assert(
      fc.property(values, (v) => {
        const expected = JSON.stringify(v);
        const actual = readableJson(v);
        expect(JSON.parse(actual)).toEqual(expected === undefined ? null : JSON.parse(expected));
      }),
      { numRuns: 500 },
    );
  });

  it("indents objects one space a level and keeps arrays of plain values on one line", () => {
    const manifest = {
      id: "m",
      features: [{ name: "user", vocab: ["a", "b"], rates: [0.5, 0.25, null], skip: undefined }],
      empty: [],
      none: {},
    };
    expect(readableJson(manifest)).toBe(
      [
        "{",
        ' "id": "m",',
        ' "features": [',
        "  {",
        '   "name": "user",',
        '   "vocab": ["a","b"],',
        '   "rates": [0.5,0.25,null]',
        "  }",
        " ],",
        ' "empty": [],',
        ' "none": {}',
        "}",
      ].join("\n"),
    );
  });
});
