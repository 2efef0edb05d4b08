/**
 * The walker bounds every Expand (edge/model/expand-bound.ts): its shape is traced back to
 * constants and Shape outputs, at most MAX_EXPAND_SHAPE_DIMS of its dimensions come from Shape,
 * and its constant dimensions (with an initializer data's elements) are at most
 * MAX_EXPAND_ROW_ELEMENTS each and in product. Graphs written field by field (onnx-wire.ts): the
 * exporter's form (trainer/export/factorised-graph.ts sideBySide) and the forms the trace follows
 * are accepted; memory bombs and shapes it cannot trace are refused naming the node and why; a
 * property over random widths and row sources accepts exactly the graphs within the bounds.
 * (test/export/graph-ops.test.ts checks every graph the exporter writes is accepted.)
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MAX_NAMES } from "../../edge/model/expand-bound.ts";
import { checkGraphOps, type GraphLimits, GraphRefusedError } from "../../edge/model/graph-ops.ts";
import { servingModel } from "../../edge/model/serving-model.ts";
import factorisedManifestJson from "../../fixtures/model-factorised/manifest.json";
import factorisedBytes from "../../fixtures/model-factorised/model.factorised.onnx";
import factorisedPlainBytes from "../../fixtures/model-factorised/model.onnx";
import { MAX_EXPAND_ROW_ELEMENTS, MAX_EXPAND_SHAPE_DIMS } from "../../shared/onnx-ops.ts";
import { logLines } from "./log-lines.ts";
import {
  concat,
  graph,
  graphInput,
  int64Initializer,
  intAttribute,
  model,
  msg,
  num,
  typedInput,
  wired,
} from "./onnx-wire.ts";

const log = logLines();

const SUFFIX = "; refused before onnxruntime reads it";
const MAX = MAX_EXPAND_ROW_ELEMENTS;

/** A model over graph inputs "item" [n, Di] and "user" [1, Du] and these graph fields. */
const withInputs = (...fields: readonly Uint8Array[]) =>
  model([graph(typedInput("item", ["n", 4]), typedInput("user", [1, 1]), ...fields)]);

/** The candidates' rows: Shape(item, end=1). */
const rows = (output = "rows") => wired("Shape", ["item"], output, intAttribute("end", 1));

/** The exporter's form: Expand(user, Concat(Shape(item, end=1), [width])) (nodes 0, 1, 2). */
const sideBySide = (width: number | bigint) =>
  withInputs(
    rows(),
    int64Initializer("width", [width]),
    wired("Concat", ["rows", "width"], "shape", intAttribute("axis", 0)),
    wired("Expand", ["user", "shape"], "sides"),
  );

/** Expand(data, shape) after `fields`, named "sides". */
const expandOf = (shape: string, fields: readonly Uint8Array[], data = "user") =>
  withInputs(...fields, wired("Expand", [data, shape], "sides"));

function refusal(bytes: Uint8Array | ArrayBuffer, file = "m.onnx", limits: GraphLimits = {}): string {
  try {
    checkGraphOps(bytes, file, limits);
  } catch (error) {
    expect(error).toBeInstanceOf(GraphRefusedError);
    return (error as Error).message;
  }
  throw new Error("accepted");
}

const refused = (node: number, why: string) => `m.onnx: node ${node} ("sides") is an Expand ${why}${SUFFIX}`;
const untraced = (node: number, why: string) =>
  refused(node, `whose shape cannot be traced back to constants and Shape outputs: ${why}`);

describe("the exporter's Expand, and the shapes the trace follows, are accepted", () => {
  it.each([1, 24, 4096, MAX])("Expand(user, Concat(Shape(item, end=1), [%i]))", (width) => {
    expect(checkGraphOps(sideBySide(width), "m.onnx")).toEqual({ nodes: 3, initializers: 1 });
  });

  it("constants as int64_data (packed), int32 through Cast, from Shape of an initializer", () => {
    const packed = expandOf("shape", [
      rows(),
      int64Initializer("width", [24], [1], true),
      wired("Concat", ["rows", "width"], "shape"),
    ]);
    expect(checkGraphOps(packed, "m.onnx").nodes).toBe(3);
    // TensorProto 1: dims [1], 2: data_type INT32, 8: name, 5: int32_data.
    const int32 = msg(5, num(1, 1), num(2, 6), msg(8, "w32"), num(5, 24));
    const cast = expandOf("shape", [
      rows(),
      int32,
      wired("Cast", ["w32"], "width", intAttribute("to", 7)),
      wired("Concat", ["rows", "width"], "shape"),
    ]);
    expect(checkGraphOps(cast, "m.onnx").nodes).toBe(4);
    // Shape of an initializer is its dims: constants, not rows.
    const ofInitializer = expandOf("shape", [
      rows(),
      msg(5, num(1, 3), num(1, 24), num(2, 1), msg(8, "table")),
      wired("Shape", ["table"], "dims", intAttribute("start", -1)),
      wired("Concat", ["rows", "dims"], "shape"),
    ]);
    expect(checkGraphOps(ofInitializer, "m.onnx").nodes).toBe(4);
  });

  it("rows through Gather, Slice, Unsqueeze, Squeeze, Reshape and Identity; widths through Slice and Gather", () => {
    const bytes = expandOf("shape", [
      wired("Shape", ["item"], "all"),
      int64Initializer("zero", [0], []),
      wired("Gather", ["all", "zero"], "n"), // a scalar
      int64Initializer("axes", [0]),
      wired("Unsqueeze", ["n", "axes"], "n1"),
      wired("Squeeze", ["n1", "axes"], "n0"),
      int64Initializer("flat", [-1]),
      wired("Reshape", ["n0", "flat"], "n2"),
      wired("Identity", ["n2"], "row"),
      int64Initializer("table", [7, 24, 9, 3]),
      int64Initializer("from", [-3]),
      int64Initializer("to", [-2]),
      wired("Slice", ["table", "from", "to"], "w"), // [24]
      int64Initializer("pick", [3]),
      wired("Gather", ["table", "pick"], "v"), // [3]
      wired("Concat", ["row", "w", "v"], "shape"),
    ]);
    expect(checkGraphOps(bytes, "m.onnx").nodes).toBe(10);
    const sliced = expandOf("shape", [
      wired("Shape", ["item"], "all"),
      int64Initializer("zero", [0]),
      int64Initializer("one", [1]),
      wired("Slice", ["all", "zero", "one"], "row"),
      int64Initializer("width", [24]),
      wired("Concat", ["row", "width"], "shape"),
    ]);
    expect(checkGraphOps(sliced, "m.onnx").nodes).toBe(4);
  });

  it("a chain of 32 Identity nodes; two Expands sharing their shape", () => {
    const chain = Array.from({ length: 32 }, (_, i) => wired("Identity", [`s${i}`], `s${i + 1}`));
    expect(checkGraphOps(expandOf("s32", [int64Initializer("s0", [2, 24]), ...chain]), "m.onnx").nodes).toBe(
      33,
    );
    const twice = withInputs(
      rows(),
      int64Initializer("width", [24]),
      wired("Concat", ["rows", "width"], "shape"),
      wired("Expand", ["user", "shape"], "a"),
      wired("Expand", ["user", "shape"], "b"),
    );
    expect(checkGraphOps(twice, "m.onnx").nodes).toBe(4);
  });

  it("an initializer data whose elements times the shape's stay within the bound", () => {
    const data = msg(5, num(1, 1), num(1, MAX / 2), num(2, 1), msg(8, "d"));
    const bytes = expandOf(
      "shape",
      [rows(), data, int64Initializer("two", [2, 1]), wired("Concat", ["rows", "two"], "shape")],
      "d",
    );
    expect(() => checkGraphOps(bytes, "m.onnx")).not.toThrow();
  });
});

describe("refused, naming the Expand node and why", () => {
  it("a constant huge shape", () => {
    const bytes = expandOf("shape", [int64Initializer("shape", [100_000_000, 100_000])]);
    expect(refusal(bytes)).toBe(
      refused(0, `whose shape holds the dimension 100000000; a constant dimension is 0 to ${MAX}`),
    );
  });

  it("Concat(Shape(item, end=1), [1e9]), and a width one over the bound", () => {
    expect(refusal(sideBySide(1_000_000_000))).toBe(
      refused(2, `whose shape holds the dimension 1000000000; a constant dimension is 0 to ${MAX}`),
    );
    expect(refusal(sideBySide(MAX + 1))).toBe(
      refused(2, `whose shape holds the dimension ${MAX + 1}; a constant dimension is 0 to ${MAX}`),
    );
    expect(refusal(sideBySide(2n ** 63n - 1n))).toMatch(/holds the dimension 9223372036854776000;/);
    expect(refusal(sideBySide(-1))).toMatch(/holds the dimension -1;/);
  });

  it("Concat(Shape, Shape): rows × rows", () => {
    const bytes = expandOf("shape", [rows("a"), rows("b"), wired("Concat", ["a", "b"], "shape")]);
    expect(refusal(bytes)).toBe(
      refused(
        3,
        `whose shape takes 2 dimensions from Shape outputs; at most ${MAX_EXPAND_SHAPE_DIMS} may (rows × rows grows with the square of the request)`,
      ),
    );
    // The whole shape of a tensor: how many dimensions, unknown.
    expect(refusal(expandOf("all", [wired("Shape", ["item"], "all")]))).toBe(
      refused(1, "whose shape holds every dimension of another tensor, how many unknown"),
    );
  });

  it("constant dimensions whose product is over the bound, with an initializer data's elements", () => {
    const bytes = expandOf("shape", [
      rows(),
      int64Initializer("dims", [100, 100]),
      wired("Concat", ["rows", "dims"], "shape"),
    ]);
    expect(refusal(bytes)).toBe(refused(2, `to 100 × 100 = 10000 elements a row; at most ${MAX}`));
    // Data [1, 9000] (no values needed to refuse), reshaped, broadcast to [n, 9000].
    const data = msg(5, num(1, 1), num(1, 9000), num(2, 1), msg(8, "d"));
    const reshaped = expandOf(
      "shape",
      [
        rows(),
        data,
        int64Initializer("flat", [1, -1]),
        wired("Reshape", ["d", "flat"], "d2"),
        int64Initializer("one", [1]),
        wired("Concat", ["rows", "one"], "shape"),
      ],
      "d2",
    );
    expect(refusal(reshaped)).toBe(
      refused(3, `to 1 × 9000 of its data = 9000 elements a row; at most ${MAX}`),
    );
  });

  it("a shape from a graph input, and others the trace cannot follow", () => {
    const width = int64Initializer("width", [24]);
    const cases: [Uint8Array, string][] = [
      [expandOf("shape", [graphInput("shape")]), untraced(0, `"shape" is a graph input`)],
      [expandOf("shape", []), untraced(0, `"shape" is neither an initializer nor a node's output`)],
      [
        expandOf("shape", [width, wired("Mul", ["width", "width"], "shape")]),
        untraced(1, `"shape" comes from node 0 ("shape"), a Mul, which the check does not follow`),
      ],
      [
        expandOf("shape", [int64Initializer("shape", [1, 24]), graphInput("shape")]),
        untraced(0, `"shape" is a graph input`),
      ],
      [
        expandOf("shape", [int64Initializer("shape", [1, 24]), wired("Identity", ["width"], "shape"), width]),
        untraced(1, `"shape" is defined more than once`),
      ],
      [
        expandOf("shape", [wired("Identity", ["b"], "shape"), wired("Identity", ["shape"], "b")]),
        untraced(2, `"shape" depends on itself`),
      ],
      [
        expandOf("shape", [msg(5, num(1, 2), num(2, 1), msg(8, "shape"), msg(9, new Uint8Array(8)))]),
        untraced(0, `"shape" is an initializer of data type 1, not int64 or int32`),
      ],
      [
        expandOf("shape", [rows(), wired("Cast", ["rows"], "shape", intAttribute("to", 1))]),
        untraced(2, `"shape" comes from node 1 ("shape"), a Cast to data type 1, not int64 or int32`),
      ],
      [
        expandOf("shape", [
          wired("Shape", ["item"], "shape", intAttribute("end", 1), intAttribute("end", 9)),
        ]),
        untraced(
          1,
          `"shape" comes from node 0 ("shape"), a Shape whose start, end or to attribute is given twice`,
        ),
      ],
      [
        expandOf("shape", [
          wired("Shape", ["item"], "all"),
          int64Initializer("zero", [0]),
          int64Initializer("end", [2n ** 63n - 1n]),
          wired("Slice", ["all", "zero", "end"], "tail"),
          wired("Concat", ["tail", "width"], "shape"),
          width,
        ]),
        untraced(
          3,
          `"shape" comes from node 2 ("shape"), a Concat of every dimension of a tensor, how many unknown`,
        ),
      ],
      [
        expandOf("shape", [width, rows(), wired("Gather", ["width", "rows"], "shape")]),
        untraced(
          2,
          `"shape" comes from node 1 ("shape"), a Gather whose indices are not constants of a known rank`,
        ),
      ],
    ];
    for (const [bytes, message] of cases) expect(refusal(bytes), message).toBe(message);
  });

  it("a trace past 32 nodes, an Expand without a shape, and the second of two Expands", () => {
    const chain = Array.from({ length: 33 }, (_, i) => wired("Identity", [`s${i}`], `s${i + 1}`));
    expect(refusal(expandOf("s33", [int64Initializer("s0", [2, 24]), ...chain]))).toBe(
      untraced(33, "it goes back more than 32 nodes"),
    );
    expect(refusal(withInputs(wired("Expand", ["user"], "sides")))).toBe(refused(0, "without a shape input"));
    const second = withInputs(
      rows(),
      int64Initializer("width", [24]),
      int64Initializer("wide", [MAX + 1]),
      wired("Concat", ["rows", "width"], "shape"),
      wired("Expand", ["user", "shape"], "fine"),
      wired("Concat", ["rows", "wide"], "bomb"),
      wired("Expand", ["user", "bomb"], "sides"),
    );
    expect(refusal(second)).toBe(
      refused(4, `whose shape holds the dimension ${MAX + 1}; a constant dimension is 0 to ${MAX}`),
    );
  });
});

describe("many names and many Expands", () => {
  it("Expands past the lookups the check scans for (it builds an index): the bad one is still found", () => {
    const fields: Uint8Array[] = [int64Initializer("width", [24]), int64Initializer("wide", [MAX + 1])];
    for (let i = 0; i < 40; i++)
      fields.push(
        rows(`r${i}`),
        wired("Concat", [`r${i}`, i === 39 ? "wide" : "width"], `c${i}`),
        wired("Expand", ["user", `c${i}`], i === 39 ? "sides" : `e${i}`),
      );
    expect(refusal(withInputs(...fields))).toBe(
      refused(119, `whose shape holds the dimension ${MAX + 1}; a constant dimension is 0 to ${MAX}`),
    );
    fields.splice(-2, 2, wired("Concat", ["r39", "width"], "c39"), wired("Expand", ["user", "c39"], "sides"));
    expect(checkGraphOps(withInputs(...fields), "m.onnx").nodes).toBe(120);
  });

  it("a graph with an Expand and more than MAX_NAMES names; without an Expand they are not counted", () => {
    // MAX_NAMES - 2 initializers, the shape, and the Expand's output: MAX_NAMES names.
    const names = Array.from({ length: MAX_NAMES - 2 }, (_, i) => int64Initializer(`i${i}`, [1]));
    const shape = int64Initializer("shape", [2, 24]);
    const expand = wired("Expand", ["x", "shape"], "sides");
    // The Expand reads "x", which nothing defines: only the name count is under test here.
    const unwired = { shapes: false };
    expect(checkGraphOps(model([graph(...names, shape, expand)]), "m.onnx", unwired).initializers).toBe(
      MAX_NAMES - 1,
    );
    const more = int64Initializer("more", [1]);
    expect(refusal(model([graph(...names, shape, more, expand)]), "m.onnx", unwired)).toBe(
      `m.onnx: the graph defines more than ${MAX_NAMES} names, more than the Expand check reads${SUFFIX}`,
    );
    expect(checkGraphOps(model([graph(...names, shape, more)]), "m.onnx").initializers).toBe(MAX_NAMES);
  });
});

describe("property: random widths and row sources are accepted exactly within the bounds", () => {
  /** A dimension of the shape: rows read one of three ways, or a constant, mostly small. */
  const dimension = fc.oneof(
    { arbitrary: fc.record({ rows: fc.constantFrom("shape", "gather", "slice") }), weight: 1 },
    {
      arbitrary: fc.record({
        value: fc.oneof(
          { arbitrary: fc.integer({ min: 0, max: 64 }), weight: 4 },
          { arbitrary: fc.integer({ min: MAX - 64, max: MAX + 64 }), weight: 2 },
          { arbitrary: fc.integer({ min: -3, max: 2 ** 40 }), weight: 1 },
        ),
        packed: fc.boolean(),
      }),
      weight: 2,
    },
  );
  /** The data: the graph input "user", or an initializer of these dims (no values needed). */
  const data = fc.option(
    fc.array(
      fc.oneof(
        { arbitrary: fc.integer({ min: 1, max: 8 }), weight: 4 },
        { arbitrary: fc.integer({ min: 1, max: 20_000 }), weight: 1 },
      ),
      { minLength: 1, maxLength: 3 },
    ),
    { freq: 2 },
  );

  it("accepted iff at most one dimension from Shape, every constant in 0..MAX and their product (times the data's elements) at most MAX", () => {
    let accepted = 0;
    let refusedCount = 0;
    fc.assert(
      fc.property(fc.array(dimension, { minLength: 1, maxLength: 4 }), data, (dims, dataDims) => {
        const fields: Uint8Array[] = [int64Initializer("zero", [0]), int64Initializer("one", [1])];
        const parts = dims.map((d, i) => {
          const name = `d${i}`;
          if ("value" in d) fields.push(int64Initializer(name, [d.value], [1], d.packed));
          else if (d.rows === "shape") fields.push(wired("Shape", ["item"], name, intAttribute("end", 1)));
          else if (d.rows === "gather")
            fields.push(wired("Shape", ["item"], `${name}a`), wired("Gather", [`${name}a`, "zero"], name));
          else
            fields.push(
              wired("Shape", ["item"], `${name}a`),
              wired("Slice", [`${name}a`, "zero", "one"], name),
            );
          return name;
        });
        fields.push(wired("Concat", parts, "shape"));
        if (dataDims) fields.push(msg(5, ...dataDims.map((d) => num(1, d)), num(2, 1), msg(8, "d")));
        const bytes = expandOf("shape", fields, dataDims ? "d" : "user");
        const constants = dims.flatMap((d) => ("value" in d ? [d.value] : []));
        const product = [...constants, ...(dataDims ?? [])].reduce((a, b) => a * b, 1);
        const within =
          dims.length - constants.length <= MAX_EXPAND_SHAPE_DIMS &&
          constants.every((v) => v >= 0 && v <= MAX) &&
          product <= MAX;
        if (within) {
          // Shapes off: a data of any dims is drawn, broadcast or not against the rows (shape-bound.test.ts).
          expect(() => checkGraphOps(bytes, "m.onnx", { shapes: false })).not.toThrow();
          accepted += 1;
        } else {
          expect(refusal(bytes, "m.onnx", { shapes: false })).toMatch(
            /^m\.onnx: node \d+ \("sides"\) is an Expand /,
          );
          refusedCount += 1;
        }
      }),
      { numRuns: 1000, seed: 20261208 },
    );
    // Both sides of the bound are drawn often.
    expect(accepted).toBeGreaterThan(200);
    expect(refusedCount).toBeGreaterThan(200);
  });
});

describe("loading: an unbounded Expand is a failed load", () => {
  it("a factorised graph with one: model.factorised_rejected names it, the plain graph serves", async () => {
    const nodes = checkGraphOps(factorisedBytes, "f").nodes;
    const bomb = concat(
      new Uint8Array(factorisedBytes),
      graph(
        int64Initializer("bomb/shape", [100_000, 100_000]),
        wired("Expand", ["user_dense", "bomb/shape"], "bomb"),
      ),
    );
    const loaded = await servingModel({
      manifest: factorisedManifestJson,
      model: factorisedPlainBytes,
      factorised: bomb.buffer as ArrayBuffer,
    }).load();
    expect(loaded.graph).toBe("plain");
    expect(log.events("model.factorised_rejected")).toMatchObject([
      {
        error: `GraphRefusedError: model.factorised.onnx: node ${nodes} ("bomb") is an Expand whose shape holds the dimension 100000; a constant dimension is 0 to ${MAX}${SUFFIX}`,
      },
    ]);
  });
});
