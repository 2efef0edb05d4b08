/**
 * The walker infers every tensor's shape (edge/model/shape-bound.ts) and refuses a graph one of
 * whose tensors could hold more than MAX_TENSOR_ELEMENTS at the candidate cap, grows with rows ×
 * rows, or cannot be inferred. Graphs written field by field (onnx-wire.ts): broadcasting bombs of
 * a few KB (chained Adds, MatMul of a column by a row, Gather by wide indices, rows × rows) are
 * refused naming the node and the tensor; the exporter's forms and the fixtures are accepted; a
 * property over random elementwise graphs accepts exactly those whose true broadcast sizes (computed
 * here) stay within the bound. (test/export/graph-ops.test.ts checks every exported graph is accepted.)
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { checkGraphOps, GraphRefusedError } from "../../edge/model/graph-ops.ts";
import { MAX_RANK } from "../../edge/model/shape-bound.ts";
import { MAX_CANDIDATES } from "../../edge/rerank/schema.ts";
import modelBytes from "../../fixtures/model/model.onnx";
import factorisedBytes from "../../fixtures/model-factorised/model.factorised.onnx";
import featuresFactorisedBytes from "../../fixtures/model-features/model.factorised.onnx";
import { MAX_TENSOR_ELEMENTS } from "../../shared/onnx-ops.ts";
import {
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

const SUFFIX = "; refused before onnxruntime reads it";
const MAX = MAX_TENSOR_ELEMENTS;

/** A float32 initializer of these dims, zeros in raw_data (TensorProto 1, 2, 8, 9). */
const floats = (name: string, dims: readonly number[]) =>
  msg(
    5,
    ...dims.map((d) => num(1, d)),
    num(2, 1),
    msg(8, name),
    msg(9, new Uint8Array(4 * dims.reduce((n, d) => n * d, 1))),
  );

/** A model over graph input "x" [n, 4] (float32) and these graph fields. */
const overX = (...fields: readonly Uint8Array[]) => model([graph(typedInput("x", ["n", 4]), ...fields)]);

function refusal(bytes: Uint8Array | ArrayBuffer): string {
  try {
    checkGraphOps(bytes, "m.onnx");
  } catch (error) {
    expect(error).toBeInstanceOf(GraphRefusedError);
    return (error as Error).message;
  }
  throw new Error("accepted");
}

const over = (node: number, name: string, op: string, dims: string, elements: number) =>
  `m.onnx: node ${node} ("${name}") is ${/^[AEIOU]/.test(op) ? "an" : "a"} ${op} whose output "${name}" is ${dims}: ${elements} elements at ${MAX_CANDIDATES} candidates (n); at most ${MAX}${SUFFIX}`;

describe("graphs the exporter writes are accepted", () => {
  it.each([
    ["fixtures/model/model.onnx", modelBytes],
    ["fixtures/model-factorised/model.factorised.onnx", factorisedBytes],
    ["fixtures/model-features/model.factorised.onnx", featuresFactorisedBytes],
  ])("%s", (file, bytes) => {
    expect(checkGraphOps(bytes, file).nodes).toBeGreaterThan(10);
  });

  it("the exporter's forms: Gather of ids, Reshape by [-1, w] and [0, t, e], Gather by a scalar, Shape → Expand", () => {
    const bytes = model([
      graph(
        typedInput("ids", ["n", 3]),
        typedInput("user", [1, 2]),
        floats("table", [50, 4]),
        wired("Gather", ["table", "ids"], "gathered", intAttribute("axis", 0)), // [n, 3, 4]
        int64Initializer("flat", [-1, 12]),
        wired("Reshape", ["gathered", "flat"], "embedded"), // [n, 12]
        int64Initializer("split", [0, 3, 4]),
        wired("Reshape", ["embedded", "split"], "split3"), // [n, 3, 4]
        wired("Softmax", ["split3"], "w", intAttribute("axis", -1)),
        int64Initializer("k", [1], []),
        wired("Gather", ["w", "k"], "head", intAttribute("axis", 1)), // [n, 4]
        wired("Shape", ["head"], "rows", intAttribute("end", 1)),
        int64Initializer("width", [2]),
        wired("Concat", ["rows", "width"], "shape", intAttribute("axis", 0)),
        wired("Expand", ["user", "shape"], "sides"), // [n, 2]
        wired("Concat", ["sides", "head"], "x", intAttribute("axis", 1)), // [n, 6]
        int64Initializer("axes", [1]),
        wired("ReduceSum", ["x", "axes"], "sum", intAttribute("keepdims", 1)), // [n, 1]
        wired("Unsqueeze", ["sum", "axes"], "u"), // [n, 1, 1]
        wired("Squeeze", ["u", "axes"], "s"), // [n, 1]
        floats("kernel", [1, 8]),
        wired("MatMul", ["s", "kernel"], "y"), // [n, 8]
      ),
    ]);
    expect(checkGraphOps(bytes, "m.onnx")).toEqual({ nodes: 13, initializers: 7 });
  });
});

describe("broadcasting bombs are refused, naming the node and the tensor", () => {
  it("chained Adds of [64,1,…], [1,64,1,…], …: 64^4 = MAX is accepted, 64^5 refused", () => {
    const axis = (k: number) => Array.from({ length: 8 }, (_, j) => (j === k ? 64 : 1));
    const inits = Array.from({ length: 6 }, (_, k) => floats(`a${k}`, axis(k)));
    const adds = (count: number) =>
      Array.from({ length: count }, (_, k) =>
        wired("Add", [k === 0 ? "a0" : `s${k - 1}`, `a${k + 1}`], `s${k}`),
      );
    expect(checkGraphOps(model([graph(...inits, ...adds(3))]), "m.onnx").nodes).toBe(3);
    expect(refusal(model([graph(...inits, ...adds(5))]))).toBe(
      over(3, "s3", "Add", "[64, 64, 64, 64, 64, 1, 1, 1]", 64 ** 5),
    );
  });

  it("MatMul of a [N, 1] initializer by a [1, M] one", () => {
    const matmul = (n: number, m: number) =>
      model([graph(floats("col", [n, 1]), floats("row", [1, m]), wired("MatMul", ["col", "row"], "p"))]);
    expect(checkGraphOps(matmul(4096, 4096), "m.onnx").nodes).toBe(1);
    expect(refusal(matmul(4097, 4096))).toBe(over(0, "p", "MatMul", "[4097, 4096]", 4097 * 4096));
  });

  it("Gather of a table by wide indices: [n, k] ids pick [n, k, 64] rows", () => {
    const gather = (k: number) =>
      model([
        graph(typedInput("ids", ["n", k]), floats("table", [10, 64]), wired("Gather", ["table", "ids"], "g")),
      ]);
    expect(checkGraphOps(gather(256), "m.onnx").nodes).toBe(1);
    expect(refusal(gather(512))).toBe(over(0, "g", "Gather", "[n, 512, 64]", 1000 * 512 * 64));
  });

  it("Shape of a large initializer as an Expand's rows", () => {
    const bytes = model([
      graph(
        typedInput("y", ["n", 4096]),
        floats("big", [3000, 1]),
        wired("Shape", ["big"], "rows", intAttribute("end", 1)),
        int64Initializer("ones", [1, 1]),
        wired("Concat", ["rows", "ones"], "shape", intAttribute("axis", 0)),
        wired("Expand", ["y", "shape"], "e"),
      ),
    ]);
    // expand-bound.ts passes it (constants 3000, 1, 1; the data is a graph input).
    expect(refusal(bytes)).toBe(over(2, "e", "Expand", "[3000, n, 4096]", 3000 * 1000 * 4096));
  });

  it("rows × rows: Unsqueeze to [n, 1, 4] and [1, n, 4], then Add", () => {
    const bytes = overX(
      int64Initializer("one", [1]),
      int64Initializer("zero", [0]),
      wired("Unsqueeze", ["x", "one"], "a"),
      wired("Unsqueeze", ["x", "zero"], "b"),
      wired("Add", ["a", "b"], "s"),
    );
    expect(refusal(bytes)).toBe(
      `m.onnx: node 2 ("s") is an Add whose output "s" is [n, n, 4] (n: the candidates), which grows with the square of the request or faster${SUFFIX}`,
    );
  });

  it("rows × rows: MatMul of x reshaped to [4n, 1] by x reshaped to [1, 4n]", () => {
    const bytes = overX(
      int64Initializer("col", [-1, 1]),
      int64Initializer("row", [1, -1]),
      wired("Reshape", ["x", "col"], "c"),
      wired("Reshape", ["x", "row"], "r"),
      wired("MatMul", ["c", "r"], "p"),
    );
    expect(refusal(bytes)).toMatch(/^m\.onnx: node 2 \("p"\) is a MatMul whose output "p" is \[4n, 4n\]/);
  });

  it(`a tensor of over ${MAX_RANK} dimensions`, () => {
    const bytes = model([graph(floats("a", Array(MAX_RANK + 1).fill(1)))]);
    expect(refusal(bytes)).toBe(`m.onnx: initializer "a" has over ${MAX_RANK} dimensions${SUFFIX}`);
  });
});

describe("shapes it cannot infer are refused", () => {
  it("a graph input without a shape (unknown rank)", () => {
    expect(refusal(model([graph(graphInput("x"), wired("Relu", ["x"], "y"))]))).toBe(
      `m.onnx: graph input "x" has no tensor shape, so its tensors' shapes cannot be inferred${SUFFIX}`,
    );
  });

  it("a width that is not a dim_value", () => {
    expect(refusal(model([graph(typedInput("x", ["n", "w"]))]))).toBe(
      `m.onnx: graph input "x" has a dimension 1 without a dim_value; only the first (the candidates) may vary${SUFFIX}`,
    );
  });

  it("a name read before the node that computes it, or never defined", () => {
    expect(refusal(overX(wired("Relu", ["y"], "z"), wired("Relu", ["x"], "y")))).toBe(
      `m.onnx: node 0 ("z") is a Relu whose output's shape cannot be inferred: its input "y" is not a graph input, an initializer or an earlier node's output${SUFFIX}`,
    );
  });

  it("a Reshape to a shape the graph computes", () => {
    expect(refusal(overX(wired("Neg", ["x"], "s"), wired("Reshape", ["x", "s"], "r")))).toMatch(
      /node 1 \("r"\) is a Reshape whose output's shape cannot be inferred: its shape is not a one-dimensional tensor of values traced/,
    );
  });

  it("dimensions that broadcast only for some numbers of candidates", () => {
    expect(refusal(overX(floats("w", [5, 4]), wired("Add", ["x", "w"], "s")))).toMatch(
      /node 0 \("s"\) is an Add whose output's shape cannot be inferred: dimensions n and 5 broadcast only for some numbers/,
    );
  });

  it("an output defined twice", () => {
    expect(refusal(overX(wired("Relu", ["x"], "y"), wired("Neg", ["x"], "y")))).toMatch(
      /node 1 \("y"\) is a Neg whose output "y" is defined more than once/,
    );
  });
});

/** numpy broadcasting, independently: the shape, or undefined where the shapes do not broadcast. */
function numpyBroadcast(a: readonly number[], b: readonly number[]): number[] | undefined {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let k = 0; k < rank; k++) {
    const x = a[a.length - rank + k] ?? 1;
    const y = b[b.length - rank + k] ?? 1;
    if (x !== y && x !== 1 && y !== 1) return undefined;
    out.push(x === 1 ? y : x);
  }
  return out;
}

describe("property: elementwise graphs over random initializers", () => {
  it("are accepted exactly when every true broadcast is valid and within the bound", () => {
    const dim = fc.constantFrom<number>(1, 1, 2, 3, 16, 64, 256, 1024, 4096);
    const shape = fc.array(dim, { minLength: 0, maxLength: 4 });
    const op = fc.record({
      kind: fc.constantFrom("Add", "Sub", "Mul", "Max", "Min"),
      a: fc.nat(),
      b: fc.nat(),
    });
    fc.assert(
      fc.property(
        fc.array(shape, { minLength: 1, maxLength: 4 }),
        fc.array(op, { maxLength: 6 }),
        (shapes, ops) => {
          const fields: Uint8Array[] = shapes.map((s, k) =>
            msg(5, ...s.map((d) => num(1, d)), num(2, 1), msg(8, `i${k}`)),
          );
          const known: number[][] = [...shapes];
          let expected = shapes.every((s) => s.reduce((n, d) => n * d, 1) <= MAX);
          ops.forEach((o, k) => {
            const a = o.a % known.length;
            const b = o.b % known.length;
            fields.push(
              wired(
                o.kind,
                [
                  a < shapes.length ? `i${a}` : `t${a - shapes.length}`,
                  b < shapes.length ? `i${b}` : `t${b - shapes.length}`,
                ],
                `t${k}`,
              ),
            );
            const out = numpyBroadcast(known[a]!, known[b]!);
            if (out === undefined || out.reduce((n, d) => n * d, 1) > MAX) expected = false;
            known.push(out ?? []);
          });
          let accepted = true;
          try {
            checkGraphOps(model([graph(...fields)]), "m.onnx");
          } catch (error) {
            expect(error).toBeInstanceOf(GraphRefusedError);
            accepted = false;
          }
          expect(accepted).toBe(expected);
        },
      ),
      { numRuns: 300 },
    );
  });
});
