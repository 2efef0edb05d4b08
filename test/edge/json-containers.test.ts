/** Counting a JSON text's objects and arrays before it is parsed (edge/json-containers.ts). */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { containersAtMost } from "../../edge/json-containers.ts";

/** Objects and arrays in a parsed value. */
function containers(value: unknown): number {
  if (value === null || typeof value !== "object") return 0;
  const children = Array.isArray(value) ? value : Object.values(value);
  return 1 + children.reduce((n: number, child) => n + containers(child), 0);
}

describe("containersAtMost", () => {
  it("property: counts exactly the objects and arrays JSON.parse builds, brackets in strings not", () => {
    const text = fc.string({ unit: fc.constantFrom("[", "{", '"', "\\", "a", "]", "}") });
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4 }), fc.array(text, { maxLength: 3 }), (value, strings) => {
        const json = JSON.stringify([value, ...strings]);
        const n = containers(JSON.parse(json));
        expect(containersAtMost(json, n)).toBe(true);
        expect(containersAtMost(json, n - 1)).toBe(false);
      }),
      { numRuns: 500 },
    );
  });

  it("refuses nesting deeper than the depth, however few the containers", () => {
    const nested = (d: number) => `${"[".repeat(d)}${"]".repeat(d)}`;
    expect(containersAtMost(nested(10), 100, 10)).toBe(true);
    expect(containersAtMost(nested(11), 100, 10)).toBe(false);
    // Siblings do not add up: depth is the deepest nesting, not the count.
    expect(containersAtMost(`[${Array(50).fill(nested(9)).join(",")}]`, 1000, 10)).toBe(true);
    expect(containersAtMost(`["${"[".repeat(50)}"]`, 100, 2)).toBe(true);
  });

  it("an unterminated string runs to the end: its brackets are text", () => {
    expect(containersAtMost('[{"a":"[[[[', 2)).toBe(true);
    expect(containersAtMost('[{"a":"\\"[[[[', 2)).toBe(true);
    expect(containersAtMost('[{"a":"\\\\"[[[[', 2)).toBe(false);
  });
});
