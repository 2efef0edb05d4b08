import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parseSpec } from "../../shared/spec.ts";

const base = {
  format: "csv",
  features: [{ name: "age", type: "numeric" }],
  tasks: [{ name: "click", type: "binary", column: "clicked" }],
};

describe("dataset spec", () => {
  it("fills defaults", () => {
    const spec = parseSpec(base);
    expect(spec.delimiter).toBe(",");
    expect(spec.header).toBe(true);
    expect(spec.features[0]!.side).toBe("item");
  });

  it.each([
    [{ ...base, extra: 1 }, /extra/],
    [{ ...base, features: [{ name: "age", type: "numeric", sied: "user" }] }, /features\.0\.sied/],
    [{ ...base, features: [{ name: "age", type: "text" }] }, /features\.0\.type/],
    [{ ...base, tasks: [{ name: "p", type: "binary", column: "b", given: "nope" }] }, /tasks\.p\.given/],
    [{ ...base, tasks: [{ name: "p", type: "binary", column: "age" }] }, /also listed as a feature/],
    [{ ...base, header: false }, /columns/],
    [{ ...base, columns: ["age", "clicked"] }, /columns: names the columns of a CSV without a header row/],
    [{ ...base, header: true, columns: ["age", "clicked"] }, /add "header": false/],
    [{ ...base, features: [] }, /features/],
    [
      { ...base, features: [{ name: "constructor", type: "categorical" }] },
      /features: "constructor" is reserved \(the worker's requests cannot carry a key of that name\)/,
    ],
    [{ ...base, features: [{ name: "__proto__", type: "numeric" }] }, /features: "__proto__" is reserved/],
    [
      { ...base, tasks: [{ name: "prototype", type: "binary", column: "c" }] },
      /tasks: "prototype" is reserved/,
    ],
    [
      { ...base, tasks: [{ name: "buy", type: "binary", column: "b", given: "buy" }] },
      /tasks\.buy\.given: a task cannot be given itself/,
    ],
    [
      {
        ...base,
        tasks: [
          { name: "click", type: "binary", column: "c", given: "buy" },
          { name: "buy", type: "binary", column: "b", given: "click" },
        ],
      },
      /tasks\.buy\.given: given forms a loop \(click → buy → click\)/,
    ],
    [
      {
        ...base,
        tasks: [
          { name: "dwell", type: "regression", column: "d" },
          { name: "buy", type: "binary", column: "b", given: "dwell" },
        ],
      },
      /tasks\.buy\.given: "dwell" is a regression task/,
    ],
  ])("rejects %j with a message naming the key", (json, pattern) => {
    expect(() => parseSpec(json)).toThrow(pattern);
  });

  it("accepts a chain of given tasks, and names like toString that JSON objects carry", () => {
    const spec = parseSpec({
      ...base,
      features: [{ name: "toString", type: "categorical" }],
      tasks: [
        { name: "click", type: "binary", column: "c" },
        { name: "cart", type: "binary", column: "k", given: "click" },
        { name: "buy", type: "binary", column: "b", given: "cart" },
      ],
    });
    expect(spec.tasks.map((t) => t.name)).toEqual(["click", "cart", "buy"]);
  });

  it.each(["ali_ccp", "aliexpress", "criteo"])("accepts the spec for the %s sample", (name) => {
    const spec = parseSpec(JSON.parse(readFileSync(`fixtures/specs/${name}.json`, "utf8")));
    expect(spec.features.length).toBeGreaterThan(10);
  });
});
