/**
 * The worker reads a graph's protobuf before onnxruntime does (edge/model/graph-ops.ts) and
 * refuses one the exporter could not have written: an operator outside shared/onnx-ops.ts, another
 * domain, a subgraph, external data, model-local functions, another opset, too many nodes, an
 * Expand it cannot bound (expand-bound.test.ts), or bytes no protobuf parser would read. The
 * refusal is a failed load through the usual paths (bundled, R2 with `model.rejected`,
 * factorised with `model.factorised_rejected`), and the session is never created. Property tests: on random, truncated and mutated bytes, and on random
 * protobuf messages, the walker throws nothing but its GraphRefusedError and reads no byte past
 * the end. (test/export/graph-ops.test.ts checks it accepts every graph the exporter writes.)
 */
import { env } from "cloudflare:workers";
import fc from "fast-check";
import * as ort from "onnxruntime-web/wasm";
import { describe, expect, it, vi } from "vitest";
import { checkGraphOps, GraphRefusedError } from "../../edge/model/graph-ops.ts";
import { sha256Hex } from "../../edge/model/remote.ts";
import { servingModel } from "../../edge/model/serving-model.ts";
import modelBytes from "../../fixtures/model/model.onnx";
import factorisedManifestJson from "../../fixtures/model-factorised/manifest.json";
import factorisedBytes from "../../fixtures/model-factorised/model.factorised.onnx";
import factorisedPlainBytes from "../../fixtures/model-factorised/model.onnx";
import featuresFactorisedBytes from "../../fixtures/model-features/model.factorised.onnx";
import featuresPlainBytes from "../../fixtures/model-features/model.onnx";
import { MAX_GRAPH_NODES, SERVED_ONNX_OPS } from "../../shared/onnx-ops.ts";
import { logLines } from "./log-lines.ts";
import {
  attribute,
  concat,
  graph,
  initializer,
  int64Initializer,
  model,
  msg,
  node,
  num,
  opset,
  tag,
  varint,
  withNode,
} from "./onnx-wire.ts";
import { bindings, POINTER, servedApp, upload } from "./r2-store.ts";
import { manifest, type RerankBody } from "./requests.ts";

const log = logLines(() => env.TEST_POINTERS.delete(POINTER));

const SUFFIX = "; refused before onnxruntime reads it";

/**
 * The structural checks' graphs hold nodes whose inputs nothing defines ("x"): shape inference
 * (shape-bound.ts, shape-bound.test.ts) would refuse them, so it is off where they are accepted.
 */
const UNWIRED = { shapes: false };

/** The message checkGraphOps refuses `bytes` with; fails the test when it accepts them. */
function refusal(bytes: Uint8Array | ArrayBuffer, file = "m.onnx"): string {
  try {
    checkGraphOps(bytes, file);
  } catch (error) {
    expect(error).toBeInstanceOf(GraphRefusedError);
    return (error as Error).message;
  }
  throw new Error("accepted");
}

/**
 * node(op), but an Expand with a shape input, "s": int64Initializer("s") bounds it (the check of
 * Expand's shape: expand-bound.test.ts).
 */
function listed(op: string, ...extra: readonly Uint8Array[]): Uint8Array {
  return node(op, ...(op === "Expand" ? [msg(1, "s")] : []), ...extra);
}
const EXPAND_SHAPE = int64Initializer("s", [1, 24]);

const FIXTURES: [string, ArrayBuffer][] = [
  ["fixtures/model/model.onnx", modelBytes],
  ["fixtures/model-factorised/model.onnx", factorisedPlainBytes],
  ["fixtures/model-factorised/model.factorised.onnx", factorisedBytes],
  ["fixtures/model-features/model.onnx", featuresPlainBytes],
  ["fixtures/model-features/model.factorised.onnx", featuresFactorisedBytes],
];

describe("graphs the exporter wrote are accepted", () => {
  it.each(FIXTURES)("%s", (file, bytes) => {
    const summary = checkGraphOps(bytes, file);
    expect(summary.nodes).toBeGreaterThan(10);
    expect(summary.initializers).toBeGreaterThan(5);
  });

  it("every listed operator, in ONNX's default domain spelled either way, at opset 17", () => {
    const nodes = SERVED_ONNX_OPS.map((op, i) => listed(op, ...(i % 2 ? [msg(7, "ai.onnx")] : [])));
    for (const opsets of [[opset()], [opset(17, "")], [opset(17, "ai.onnx")]])
      expect(
        checkGraphOps(model([graph(...nodes, initializer("w"), EXPAND_SHAPE)], opsets), "m.onnx", UNWIRED),
      ).toEqual({
        nodes: SERVED_ONNX_OPS.length,
        initializers: 2,
      });
  });

  it("up to MAX_GRAPH_NODES nodes, over any number of graph fields (a parser merges them)", () => {
    const add = node("Add");
    const half = graph(...Array.from({ length: MAX_GRAPH_NODES / 2 }, () => add));
    expect(checkGraphOps(model([half, half]), "m.onnx", UNWIRED).nodes).toBe(MAX_GRAPH_NODES);
    expect(refusal(model([half, half, graph(add)]))).toBe(
      `m.onnx: the graph has more than ${MAX_GRAPH_NODES} nodes${SUFFIX}`,
    );
  });
});

describe("refused, naming the file and what is wrong", () => {
  it.each([
    "Loop",
    "Scan",
    "If",
    "ConstantOfShape",
    "Tile",
    "Range",
    "Resize",
    "Abs",
    "relu",
    "Add ",
  ])("an operator the exporter never writes: %j", (op) => {
    expect(refusal(model([graph(node("Add"), node(op))]), "model.onnx")).toBe(
      `model.onnx: node 1 ("n_${op}") is a "${op}", not an operator the exporter writes${SUFFIX}`,
    );
  });

  it("a listed operator whose op_type is written again as another (a parser keeps the last)", () => {
    expect(refusal(model([graph(node("Add", msg(4, "Loop")))]))).toMatch(/node 0 \("n_Add"\) is a "Loop"/);
  });

  it("a node without op_type, a name with odd bytes shown escaped", () => {
    expect(refusal(model([graph(msg(1, msg(3, 'a\u0000"b')))]))).toBe(
      `m.onnx: node 0 ("a\\x00\\x22b") has no op_type${SUFFIX}`,
    );
  });

  it.each(["com.microsoft", "ai.onnx.ml", "custom", "ai.onnx "])("a node in domain %j", (domain) => {
    expect(refusal(model([graph(node("Add", msg(7, domain)))]))).toBe(
      `m.onnx: node 0 ("n_Add") is in domain "${domain}", not ONNX's default domain${SUFFIX}`,
    );
  });

  it("a subgraph: an attribute of type GRAPH or GRAPHS, or one holding a graph whatever its type", () => {
    const body = graph(node("Add")).subarray(1); // a GraphProto's length and bytes
    const cases = [
      attribute("body", 5, concat(tag(6, 2), body)),
      attribute("branches", 10, concat(tag(11, 2), body)),
      attribute("body", 5), // the type alone
      attribute("body", (1n << 32n) + 5n), // an int32 enum keeps the low 32 bits: GRAPH
      attribute("then_branch", 2, concat(tag(6, 2), body)), // says INT, holds a graph
      attribute("branches", 7, concat(tag(11, 2), body)),
    ];
    for (const attr of cases)
      expect(refusal(model([graph(node("Add", attr))]))).toMatch(
        /^m\.onnx: attribute "(body|branches|then_branch)" of node 0 \("n_Add"\) (is|holds) a subgraph; refused/,
      );
    // Type INT with an int value is what the exporter writes.
    expect(
      checkGraphOps(model([graph(node("Add", attribute("axis", 2, num(3, 1))))]), "m.onnx", UNWIRED).nodes,
    ).toBe(1);
  });

  it("a sparse tensor, as an initializer or an attribute", () => {
    expect(refusal(model([graph(node("Add"), msg(15, msg(1, initializer("v").subarray(2))))]))).toBe(
      `m.onnx: the graph has a sparse initializer, which the exporter never writes${SUFFIX}`,
    );
    expect(refusal(model([graph(node("Add", attribute("s", 11, msg(22, ""))))]))).toMatch(
      /attribute "s" of node 0 \("n_Add"\) holds a sparse tensor/,
    );
  });

  it("tensor data in an external file: an initializer's or an attribute tensor's", () => {
    const external = num(14, 1);
    const entry = msg(13, msg(1, "location"), msg(2, "/etc/passwd"));
    expect(refusal(model([graph(node("Add"), initializer("w", external))]))).toBe(
      `m.onnx: initializer 0 "w" keeps its data in an external file${SUFFIX}`,
    );
    expect(refusal(model([graph(node("Add"), initializer("w"), initializer("v", entry))]))).toBe(
      `m.onnx: initializer 1 "v" names external data${SUFFIX}`,
    );
    expect(refusal(model([graph(node("Add", attribute("value", 4, msg(5, msg(8, "t"), external))))]))).toBe(
      `m.onnx: tensor "t" of attribute "value" of node 0 ("n_Add") keeps its data in an external file${SUFFIX}`,
    );
    expect(refusal(model([graph(node("Add", attribute("values", 9, msg(10, entry))))]))).toMatch(
      /: tensor of attribute "values" of node 0 \("n_Add"\) names external data/,
    );
    // data_location DEFAULT is what a tensor without the field means.
    expect(
      checkGraphOps(model([graph(node("Add"), initializer("w", num(14, 0)))]), "m.onnx", UNWIRED)
        .initializers,
    ).toBe(1);
  });

  it("opsets other than the exporter's: another version, another domain, none", () => {
    const add = graph(node("Add"));
    const cases: [Uint8Array[], string][] = [
      [[opset(18)], "it imports opset 18; the exporter writes 17"],
      [[opset(16)], "it imports opset 16; the exporter writes 17"],
      [[opset(-1)], "it imports opset 2^32 or more; the exporter writes 17"],
      [[opset((1n << 32n) + 17n)], "it imports opset 2^32 or more; the exporter writes 17"],
      [
        [opset(), opset(1, "ai.onnx.ml")],
        `it imports the opset of domain "ai.onnx.ml", not ONNX's default domain`,
      ],
      [
        [opset(), opset(1, "com.microsoft")],
        `it imports the opset of domain "com.microsoft", not ONNX's default domain`,
      ],
      [[msg(8, msg(1, ""))], "it imports an opset without a version"],
      [[msg(8, num(2, 17), num(2, 18))], "it imports opset 18; the exporter writes 17"],
      [[], "it imports no opset"],
    ];
    for (const [opsets, why] of cases)
      expect(refusal(model([add], opsets)), why).toBe(`m.onnx: ${why}${SUFFIX}`);
  });

  it("model-local functions, training_info, and no graph at all", () => {
    const add = graph(node("Add"));
    expect(refusal(model([add, msg(25, msg(1, "f"), msg(2, "custom"))]))).toBe(
      `m.onnx: it defines model-local functions, which the exporter never writes${SUFFIX}`,
    );
    expect(refusal(model([add, msg(20, msg(1, add.subarray(2)))]))).toBe(
      `m.onnx: it carries training_info (graphs), which the exporter never writes${SUFFIX}`,
    );
    expect(refusal(model([]))).toBe(`m.onnx: it has no graph${SUFFIX}`);
    expect(refusal(new Uint8Array(0))).toBe(`m.onnx: it has no graph${SUFFIX}`);
  });
});

describe("malformed bytes are refused as such", () => {
  const add = graph(node("Add"));
  it.each([
    [
      "a varint cut short",
      concat(model([add]), Uint8Array.of(0x80)),
      "a varint at byte \\d+ runs past the end",
    ],
    [
      "a varint over 10 bytes",
      concat(model([add]), Uint8Array.of(0x08), new Uint8Array(10).fill(0xff), Uint8Array.of(1)),
      "a varint at byte \\d+ is longer than 10 bytes",
    ],
    [
      "a length past the end",
      concat(model([add]), tag(7, 2), varint(100), Uint8Array.of(1)),
      "runs past the end",
    ],
    [
      "a length past the end of its message, inside it",
      model([msg(7, tag(1, 2), varint(5), Uint8Array.of(1, 2))]),
      "field 1 at byte \\d+ runs past the end of its message",
    ],
    ["field number 0", concat(model([add]), Uint8Array.of(0x00, 0x01)), "a field number out of range"],
    ["a start-group wire type", concat(model([add]), tag(9, 3)), "wire type 3"],
    ["an end-group wire type", concat(model([add]), tag(9, 4)), "wire type 4"],
    ["wire type 6", concat(model([add]), tag(9, 6)), "wire type 6"],
    ["wire type 7", concat(model([add]), tag(9, 7)), "wire type 7"],
    ["a fixed64 cut short", concat(model([add]), tag(9, 1), new Uint8Array(7)), "field 9 runs past the end"],
    ["a fixed32 cut short", concat(model([add]), tag(9, 5), new Uint8Array(3)), "field 9 runs past the end"],
    [
      "op_type as a varint",
      model([graph(msg(1, num(4, 3)))]),
      "field 4 has wire type 0 where onnx.proto says 2",
    ],
    ["the graph as a varint", model([num(7, 1)]), "field 7 has wire type 0 where onnx.proto says 2"],
    [
      "an attribute's type as bytes",
      model([graph(node("Add", msg(5, msg(1, "a"), msg(20, "x"))))]),
      "field 20 has wire type 2 where onnx.proto says 0",
    ],
  ])("%s", (_label, bytes, why) => {
    expect(refusal(bytes, "x.onnx")).toMatch(
      new RegExp(`^x\\.onnx: not an ONNX protobuf: .*${why}.*${SUFFIX}$`),
    );
  });

  it("every prefix of a small graph is read to its end or refused, never past it", () => {
    const bytes = model([graph(node("Add", attribute("axis", 2, num(3, 1))), initializer("w"))]);
    for (let cut = 0; cut <= bytes.length; cut++) walkGuarded(bytes.subarray(0, cut));
  });
});

/** An index read outside the array: what the walker must never do. */
class OutOfBounds extends Error {}

/** `bytes` behind a proxy that throws OutOfBounds on any element read outside it. */
function guarded(bytes: Uint8Array): Uint8Array {
  return new Proxy(bytes, {
    get(target, key) {
      if (typeof key === "string" && key !== "" && String(Number(key)) === key) {
        const i = Number(key);
        if (!(Number.isInteger(i) && i >= 0 && i < target.length))
          throw new OutOfBounds(`read of byte ${key} of ${target.length}`);
        return target[i];
      }
      const value = Reflect.get(target, key);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/** Walks `bytes` through the guard: accepted, or refused with GraphRefusedError, nothing else. */
function walkGuarded(bytes: Uint8Array): "accepted" | "refused" {
  try {
    checkGraphOps(guarded(bytes), "f.onnx");
    return "accepted";
  } catch (error) {
    if (error instanceof GraphRefusedError) return "refused";
    throw error;
  }
}

describe("properties: nothing but GraphRefusedError, no read past the end", () => {
  it("random bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
        walkGuarded(bytes);
      }),
      { numRuns: 2000, seed: 20261208 },
    );
  });

  it("the fixtures truncated and with bytes overwritten, inserted and removed", () => {
    const edit = fc.record({
      fixture: fc.integer({ min: 0, max: FIXTURES.length - 1 }),
      cut: fc.double({ min: 0, max: 1, noNaN: true }),
      writes: fc.array(
        fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.integer({ min: 0, max: 255 })),
        {
          maxLength: 6,
        },
      ),
      insert: fc.option(
        fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.uint8Array({ maxLength: 12 })),
      ),
      remove: fc.option(
        fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.integer({ min: 1, max: 12 })),
      ),
    });
    let refused = 0;
    fc.assert(
      fc.property(edit, ({ fixture, cut, writes, insert, remove }) => {
        let bytes: Uint8Array = new Uint8Array(FIXTURES[fixture]![1].slice(0));
        const at = (x: number) => Math.min(bytes.length - 1, Math.floor(x * bytes.length));
        for (const [x, b] of writes) bytes[at(x)] = b;
        if (insert)
          bytes = concat(bytes.subarray(0, at(insert[0])), insert[1], bytes.subarray(at(insert[0])));
        if (remove)
          bytes = concat(bytes.subarray(0, at(remove[0])), bytes.subarray(at(remove[0]) + remove[1]));
        if (walkGuarded(bytes.subarray(0, Math.ceil(cut * bytes.length))) === "refused") refused += 1;
      }),
      { numRuns: 600, seed: 20261208 },
    );
    expect(refused).toBeGreaterThan(0);
  });

  it("random protobuf messages built from ONNX's field numbers, nested up to six deep", () => {
    const field = fc.oneof(
      fc.constantFrom(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 20, 22, 23, 25),
      fc.integer({ min: 1, max: 2 ** 29 - 1 }),
    );
    const word = fc.constantFrom(...SERVED_ONNX_OPS, "Loop", "", "ai.onnx", "com.microsoft", "x");
    const { message } = fc.letrec<{ message: Uint8Array; part: Uint8Array }>((tie) => ({
      message: fc.array(tie("part"), { maxLength: 5 }).map((parts) => concat(...parts)),
      part: fc.oneof(
        { maxDepth: 6 },
        fc.tuple(field, fc.bigInt({ min: 0n, max: (1n << 64n) - 1n })).map(([f, v]) => num(f, v)),
        fc.tuple(field, word).map(([f, w]) => msg(f, w)),
        fc.tuple(field, fc.uint8Array({ maxLength: 12 })).map(([f, b]) => msg(f, b)),
        fc
          .tuple(field, fc.boolean())
          .map(([f, wide]) => concat(tag(f, wide ? 1 : 5), new Uint8Array(wide ? 8 : 4))),
        fc.tuple(field, tie("message")).map(([f, m]) => msg(f, m)),
      ),
    }));
    let accepted = 0;
    fc.assert(
      fc.property(message, fc.boolean(), (bytes, asGraph) => {
        // Half of them inside a model's graph, where the walker descends furthest.
        const walked = asGraph ? model([msg(7, bytes)]) : bytes;
        if (walkGuarded(walked) === "accepted") accepted += 1;
      }),
      { numRuns: 3000, seed: 20261208 },
    );
    expect(accepted).toBeGreaterThan(0);
  });

  it("a graph of listed operators is accepted, whatever their number and order", () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...SERVED_ONNX_OPS), { maxLength: 50 }), (ops) => {
        const walked = model([graph(...ops.map((op) => listed(op)), EXPAND_SHAPE)]);
        expect(checkGraphOps(guarded(walked), "f.onnx", UNWIRED).nodes).toBe(ops.length);
      }),
      { numRuns: 300, seed: 20261208 },
    );
  });
});

describe("loading: a refused graph is a failed load, and onnxruntime never reads it", () => {
  /** The fixture model with one more node, Abs on `input`: onnxruntime loads and runs it. */
  const withAbs = (bytes: ArrayBuffer, input: string) =>
    withNode(bytes, msg(1, input), msg(2, "extra_abs"), msg(3, "extra"), msg(4, "Abs"));
  const plainNodes = checkGraphOps(modelBytes, "model.onnx").nodes;
  const absMessage = (file: string, index = plainNodes) =>
    `GraphRefusedError: ${file}: node ${index} ("extra") is a "Abs", not an operator the exporter writes${SUFFIX}`;

  it("bundled: load() rejects naming the operator and the file; no session is created", async () => {
    const create = vi.spyOn(ort.InferenceSession, "create");
    try {
      const model = servingModel({ manifest, model: withAbs(modelBytes, "dense") });
      const error = await model.load().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(String(error)).toBe(absMessage("model.onnx"));
      expect(create).not.toHaveBeenCalled();
    } finally {
      create.mockRestore();
    }
  });

  it("from R2: model.rejected names the operator and the file, the bundled model keeps serving", async () => {
    const bytes = withAbs(modelBytes, "dense");
    await env.TEST_POINTERS.put(
      POINTER,
      await upload("abs", "r2-abs", { bytes, sha256: await sha256Hex(bytes) }),
    );
    const { rerank, settle } = servedApp(bindings("0").binding);
    await rerank();
    await settle();
    const body = (await (await rerank()).json()) as RerankBody;
    expect(body.model.version).toBe(manifest.version);
    expect(log.events("model.rejected")).toMatchObject([
      { pointer: "models/abs/", error: absMessage("model.onnx") },
    ]);
  });

  it("from R2 with MTRANK_MODEL_WEIGHTS=int8: the message names model.int8.onnx", async () => {
    const bytes = withAbs(modelBytes, "dense");
    const prefix = "models/abs-int8/";
    const files = { "model.int8.onnx": { sha256: await sha256Hex(bytes), bytes: bytes.byteLength } };
    await env.TEST_MODELS.put(
      `${prefix}manifest.json`,
      JSON.stringify({ ...manifest, version: "r2-abs-int8", files }),
    );
    await env.TEST_MODELS.put(`${prefix}model.int8.onnx`, bytes);
    await env.TEST_POINTERS.put(POINTER, prefix);
    const { binding } = bindings("0");
    binding.MTRANK_MODEL_WEIGHTS = "int8";
    const { rerank, settle } = servedApp(binding);
    await rerank();
    await settle();
    expect(log.events("model.rejected")).toMatchObject([
      { pointer: prefix, error: absMessage("model.int8.onnx") },
    ]);
  });

  it("a factorised graph refused: model.factorised_rejected names it, the plain graph serves", async () => {
    const factorisedNodes = checkGraphOps(factorisedBytes, "f").nodes;
    const loaded = await servingModel({
      manifest: factorisedManifestJson,
      model: factorisedPlainBytes,
      factorised: withAbs(factorisedBytes, "item_dense"),
    }).load();
    expect(loaded.graph).toBe("plain");
    expect(log.events("model.factorised_rejected")).toMatchObject([
      { error: absMessage("model.factorised.onnx", factorisedNodes) },
    ]);
  });
});
