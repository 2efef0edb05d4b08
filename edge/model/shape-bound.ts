/**
 * Bounds every tensor a graph computes. Broadcasting operators over small initializers size their
 * output from the initializers' shapes: forty Adds of [2,1,1,…] and [1,2,1,…] make 2^40 elements,
 * MatMul of [N,1] by [1,M] makes N·M, and a few KB of such a graph would ask a 128 MB isolate for
 * terabytes. So the walker (graph-ops.ts) infers every node output's shape statically, in file
 * order, and refuses the graph unless each one is inferred and holds at most MAX_TENSOR_ELEMENTS
 * elements at the worker's candidate cap.
 *
 * A dimension is a linear form c + r·n in the request's rows n (the candidates, at most
 * MAX_CANDIDATES: a graph input's first dimension given as a dim_param or left out), either exact
 * or an upper bound (a Slice of the rows, a broadcast of an upper bound). Graph inputs take their
 * declared shapes (the worker feeds [rows, width], or [1, width] for the factorised graph's user
 * half, and onnxruntime checks a feed against the declared dims); a width that is not a dim_value
 * is refused. Initializers take their dims. Each operator of SERVED_ONNX_OPS has its opset 17
 * rule: numpy broadcasting for Add, Sub, Mul, Max, Min; MatMul and MatMulInteger; Gather; Concat;
 * Reshape (0 and -1); Slice, Squeeze, Unsqueeze, ReduceSum with constant inputs; Shape (its values
 * kept, as dimensions); Expand; DynamicQuantizeLinear (three outputs); the rest keep their first
 * input's shape. Small int64/int32 tensors' values are traced, as expand-bound.ts traces them, so
 * a Reshape's or an Expand's shape is known.
 *
 * Refused: an output over MAX_TENSOR_ELEMENTS at n = MAX_CANDIDATES; one whose element count
 * grows faster than n (rows × rows); one whose shape cannot be inferred (a graph input without a
 * shape, a name read before it is defined or defined twice, a shape from values it cannot trace,
 * dimensions that broadcast only for some row counts); a rank over MAX_RANK. The exporter's graphs
 * are all inferable (test/export/graph-ops.test.ts). Initializers are not bounded here: their bytes
 * are in the file, which the worker's size cap bounds.
 *
 * Bounded work: one pass over the nodes, each output's shape at most MAX_RANK dimensions, each
 * traced tensor at most MAX_VALUES values; names are looked up in a Map of strings (V8 seeds its
 * string hash).
 */
import { MAX_GRAPH_ROWS as MAX_CANDIDATES, MAX_TENSOR_ELEMENTS } from "../../shared/onnx-ops.ts";
import type { GraphAccess, GraphParts } from "./expand-bound.ts";
import { MAX_NAMES } from "./expand-bound.ts";
import {
  ATTRIBUTE_I,
  ATTRIBUTE_INTS,
  ATTRIBUTE_NAME,
  DATA_TYPE_INT32,
  DATA_TYPE_INT64,
  DIM_PARAM,
  DIM_VALUE,
  NODE_ATTRIBUTE,
  NODE_INPUT,
  NODE_NAME,
  NODE_OP_TYPE,
  NODE_OUTPUT,
  SHAPE_DIM,
  TENSOR_DATA_TYPE,
  TENSOR_DIMS,
  TENSOR_INT32_DATA,
  TENSOR_INT64_DATA,
  TENSOR_NAME,
  TENSOR_RAW_DATA,
  TENSOR_SEGMENT,
  TENSOR_TYPE_SHAPE,
  TYPE_TENSOR_TYPE,
  VALUE_INFO_NAME,
  VALUE_INFO_TYPE,
} from "./onnx-fields.ts";
import { type Fields, intAt, LENGTH_DELIMITED, packedVarints, VARINT } from "./protobuf-fields.ts";

/** Dimensions a tensor may have; the exporter's have at most 3. */
export const MAX_RANK = 8;
/** Values of an int64/int32 tensor traced (a shape holds one per dimension). */
const MAX_VALUES = 64;

/** c + r·n: exact, or an upper bound. */
interface Dim {
  readonly c: number;
  readonly r: number;
  readonly exact: boolean;
}

/** A tensor: its dimensions, and its values where it is a small int64/int32 tensor they are known of. */
interface Tensor {
  readonly dims: readonly Dim[];
  readonly values?: readonly Dim[];
}

const ONE: Dim = { c: 1, r: 0, exact: true };
const ROWS: Dim = { c: 0, r: 1, exact: true };
const constant = (c: number): Dim => ({ c, r: 0, exact: true });
const isConstant = (d: Dim, c?: number) => d.r === 0 && d.exact && (c === undefined || d.c === c);
const same = (a: Dim, b: Dim) => a.c === b.c && a.r === b.r && a.exact && b.exact;
const bound = (a: Dim, b: Dim): Dim => ({ c: Math.max(a.c, b.c), r: Math.max(a.r, b.r), exact: false });

/** A dimension as messages show it: 8, n, 24n, n+5, ≤n. */
function shownDim(d: Dim): string {
  const rows = d.r === 0 ? "" : d.r === 1 ? "n" : `${d.r}n`;
  const text = rows === "" ? String(d.c) : d.c === 0 ? rows : `${rows}+${d.c}`;
  return d.exact ? text : `≤${text}`;
}
const shownDims = (dims: readonly Dim[]) => `[${dims.map(shownDim).join(", ")}]`;

/** Why a node's output cannot be inferred (thrown inside the check, caught and reported there). */
class Uninferred {
  constructor(readonly why: string) {}
}
const fail = (why: string): never => {
  throw new Uninferred(why);
};

/** Refuses, through `walk`, a graph one of whose tensors is unbounded or not inferred (see the file comment). */
export function checkShapeBounds(bytes: Uint8Array, parts: GraphParts, walk: GraphAccess): void {
  if (parts.names > MAX_NAMES)
    walk.refuse(`the graph defines more than ${MAX_NAMES} names, more than the shape check reads`);
  new ShapeCheck(bytes, parts, walk).run();
}

interface NodeView {
  op: string;
  nameAt: number;
  nameEnd: number;
  inputs: string[];
  outputs: string[];
  /** int attributes by name (the last of a name counts, as a parser reads them). */
  ints: Map<string, number>;
  /** ints attributes by name. */
  lists: Map<string, number[]>;
}

class ShapeCheck {
  private readonly tensors = new Map<string, Tensor>();

  constructor(
    private readonly bytes: Uint8Array,
    private readonly parts: GraphParts,
    private readonly walk: GraphAccess,
  ) {}

  run(): void {
    const { initializers, inputs, nodes } = this.parts;
    for (let k = 0; k < initializers.length; k += 4)
      this.initializer(initializers.data[k]!, initializers.data[k + 1]!);
    for (let k = 0; k < inputs.length; k += 2) this.input(inputs.data[k]!, inputs.data[k + 1]!);
    for (let index = 0; 2 * index < nodes.length; index++) {
      const node = this.node(nodes.data[2 * index]!, nodes.data[2 * index + 1]!);
      const label = () =>
        `${this.walk.nodeLabel(index, node.nameAt, node.nameEnd)} is ${/^[AEIOU]/.test(node.op) ? "an" : "a"} ${node.op}`;
      let outs: Tensor[];
      try {
        outs = this.infer(node);
      } catch (error) {
        if (!(error instanceof Uninferred)) throw error;
        this.walk.refuse(`${label()} whose output's shape cannot be inferred: ${error.why}`);
      }
      for (let k = 0; k < node.outputs.length; k++) {
        const name = node.outputs[k]!;
        if (name === "") continue;
        const out = outs[k];
        const shown = JSON.stringify(name.length > 64 ? `${name.slice(0, 64)}…` : name);
        if (out === undefined) this.walk.refuse(`${label()} without an output ${k}, which it names ${shown}`);
        if (this.tensors.has(name))
          this.walk.refuse(`${label()} whose output ${shown} is defined more than once`);
        this.bounded(out, () => `${label()} whose output ${shown}`);
        this.tensors.set(name, out);
      }
    }
  }

  /** Refuses a tensor over the bound, or growing faster than the rows. */
  private bounded(t: Tensor, what: () => string): void {
    if (t.dims.length > MAX_RANK)
      this.walk.refuse(`${what()} has ${t.dims.length} dimensions; at most ${MAX_RANK}`);
    let elements = 1;
    let growing = 0;
    for (const d of t.dims) {
      if (d.r > 0) growing += 1;
      elements *= d.c + d.r * MAX_CANDIDATES;
    }
    if (growing > 1 && elements > 0)
      this.walk.refuse(
        `${what()} is ${shownDims(t.dims)} (n: the candidates), which grows with the square of the request or faster`,
      );
    if (elements > MAX_TENSOR_ELEMENTS)
      this.walk.refuse(
        `${what()} is ${shownDims(t.dims)}: ${elements} elements at ${MAX_CANDIDATES} candidates (n); at most ${MAX_TENSOR_ELEMENTS}`,
      );
  }

  private define(name: string, t: Tensor, what: () => string): void {
    if (this.tensors.has(name)) this.walk.refuse(`${what()} is defined more than once`);
    this.tensors.set(name, t);
  }

  /** A graph input: its declared tensor shape, the first dimension n where not a dim_value. */
  private input(start: number, stop: number): void {
    const v = this.walk.fields(start, stop);
    let name = "";
    let type: [number, number] | undefined;
    while (v.next())
      if (v.field === VALUE_INFO_NAME) name = this.key(v.start, v.stop);
      else if (v.field === VALUE_INFO_TYPE && v.wire === LENGTH_DELIMITED) type = [v.start, v.stop];
    const what = () => `graph input ${JSON.stringify(name)}`;
    let shape: [number, number] | undefined;
    if (type) {
      const t = this.walk.fields(type[0], type[1]);
      while (t.next())
        if (t.field === TYPE_TENSOR_TYPE && t.wire === LENGTH_DELIMITED) {
          const s = this.walk.fields(t.start, t.stop);
          shape = undefined;
          while (s.next())
            if (s.field === TENSOR_TYPE_SHAPE && s.wire === LENGTH_DELIMITED) shape = [s.start, s.stop];
        }
    }
    if (!shape) this.walk.refuse(`${what()} has no tensor shape, so its tensors' shapes cannot be inferred`);
    const dims: Dim[] = [];
    const s = this.walk.fields(shape[0], shape[1]);
    while (s.next()) {
      if (s.field !== SHAPE_DIM || s.wire !== LENGTH_DELIMITED) continue;
      if (dims.length === MAX_RANK) this.walk.refuse(`${what()} has over ${MAX_RANK} dimensions`);
      let value: number | undefined;
      const d = this.walk.fields(s.start, s.stop);
      while (d.next())
        if (d.field === DIM_VALUE && d.wire === VARINT) value = intAt(this.bytes, d.start, d.stop, 64);
        else if (d.field === DIM_PARAM) value = undefined; // the oneof's last field counts
      if (value === undefined) {
        if (dims.length > 0)
          this.walk.refuse(
            `${what()} has a dimension ${dims.length} without a dim_value; only the first (the candidates) may vary`,
          );
        dims.push(ROWS);
      } else if (value < 0) this.walk.refuse(`${what()} has the dimension ${value}`);
      else dims.push(constant(value));
    }
    this.bounded({ dims }, what);
    this.define(name, { dims }, what);
  }

  /** An initializer: its dims, and its values if it is a small int64/int32 tensor. */
  private initializer(start: number, stop: number): void {
    const t = this.walk.fields(start, stop);
    const dims: number[] = [];
    let name = "";
    let type = 0;
    let segmented = false;
    let raw: [number, number] | undefined;
    const ints: number[] = [];
    while (t.next())
      switch (t.field) {
        case TENSOR_DIMS:
          this.ints(t, 64, (d) => dims.push(d), MAX_RANK + 1);
          break;
        case TENSOR_DATA_TYPE:
          type = t.value;
          break;
        case TENSOR_SEGMENT:
          segmented = true;
          break;
        case TENSOR_INT32_DATA:
        case TENSOR_INT64_DATA:
          this.ints(t, t.field === TENSOR_INT32_DATA ? 32 : 64, (v) => ints.push(v), MAX_VALUES + 1);
          break;
        case TENSOR_NAME:
          name = this.key(t.start, t.stop);
          break;
        case TENSOR_RAW_DATA:
          raw = [t.start, t.stop];
      }
    const what = () => `initializer ${JSON.stringify(name)}`;
    if (dims.length > MAX_RANK) this.walk.refuse(`${what()} has over ${MAX_RANK} dimensions`);
    if (dims.some((d) => d < 0)) this.walk.refuse(`${what()} has a negative dimension`);
    const elements = dims.reduce((n, d) => n * d, 1);
    let values: Dim[] | undefined;
    if ((type === DATA_TYPE_INT64 || type === DATA_TYPE_INT32) && !segmented && elements <= MAX_VALUES) {
      const width = type === DATA_TYPE_INT64 ? 8 : 4;
      if (raw) {
        if (raw[1] - raw[0] === width * elements) {
          const view = new DataView(this.bytes.buffer, this.bytes.byteOffset + raw[0], raw[1] - raw[0]);
          values = [];
          for (let k = 0; k < elements; k++)
            values.push(
              constant(width === 8 ? Number(view.getBigInt64(8 * k, true)) : view.getInt32(4 * k, true)),
            );
        }
      } else if (ints.length === elements) values = ints.map(constant);
    }
    this.bounded({ dims: dims.map(constant) }, what);
    if (name === "") return; // nothing can read it
    this.define(name, { dims: dims.map(constant), ...(values ? { values } : {}) }, what);
  }

  /** A repeated integer field's values, one varint or packed; at most `most` read. */
  private ints(f: Fields, bits: 32 | 64, each: (value: number) => void, most: number): void {
    if (f.wire === VARINT) {
      each(intAt(this.bytes, f.start, f.stop, bits));
      return;
    }
    if (f.wire !== LENGTH_DELIMITED) return;
    packedVarints(this.bytes, f.start, f.stop, bits, most, each, (why) => this.walk.refuse(why));
  }

  private node(start: number, stop: number): NodeView {
    const n = this.walk.fields(start, stop);
    const view: NodeView = {
      op: "",
      nameAt: -1,
      nameEnd: -1,
      inputs: [],
      outputs: [],
      ints: new Map(),
      lists: new Map(),
    };
    while (n.next())
      switch (n.field) {
        case NODE_INPUT:
          view.inputs.push(this.key(n.start, n.stop));
          break;
        case NODE_OUTPUT:
          view.outputs.push(this.key(n.start, n.stop));
          break;
        case NODE_NAME:
          view.nameAt = n.start;
          view.nameEnd = n.stop;
          break;
        case NODE_OP_TYPE:
          view.op = this.key(n.start, n.stop);
          break;
        case NODE_ATTRIBUTE: {
          const a = this.walk.fields(n.start, n.stop);
          let name = "";
          let value = 0;
          const list: number[] = [];
          while (a.next())
            if (a.field === ATTRIBUTE_NAME) name = a.stop - a.start <= 24 ? this.key(a.start, a.stop) : "";
            else if (a.field === ATTRIBUTE_I && a.wire === VARINT)
              value = intAt(this.bytes, a.start, a.stop, 64);
            else if (a.field === ATTRIBUTE_INTS) this.ints(a, 64, (v) => list.push(v), MAX_RANK + 1);
          view.ints.set(name, value);
          view.lists.set(name, list);
        }
      }
    return view;
  }

  /** The node's outputs' shapes (and values), by opset 17's rules. */
  private infer(node: NodeView): Tensor[] {
    const input = (k: number): Tensor => {
      const name = node.inputs[k];
      if (name === undefined || name === "") return fail(`it has no input ${k}`);
      const t = this.tensors.get(name);
      if (t === undefined)
        return fail(
          `its input ${JSON.stringify(name)} is not a graph input, an initializer or an earlier node's output`,
        );
      return t;
    };
    const optional = (k: number): Tensor | undefined => (node.inputs[k] ? input(k) : undefined);
    const attr = (name: string, absent: number) => node.ints.get(name) ?? absent;
    const first = () => input(0);
    switch (node.op) {
      case "Add":
      case "Sub":
      case "Mul":
      case "Max":
      case "Min": {
        if (node.inputs.length === 0) return fail("it has no inputs");
        let dims = input(0).dims;
        for (let k = 1; k < node.inputs.length; k++) dims = broadcast(dims, input(k).dims);
        return [{ dims }];
      }
      case "Identity":
        return [first()];
      case "Cast": {
        const to = attr("to", 0);
        const x = first();
        return [to === DATA_TYPE_INT64 || to === DATA_TYPE_INT32 ? x : { dims: x.dims }];
      }
      case "DequantizeLinear":
      case "Exp":
      case "Log":
      case "Neg":
      case "Relu":
      case "Sigmoid":
      case "Softmax":
      case "Softplus":
        return [{ dims: first().dims }];
      case "DynamicQuantizeLinear":
        return [{ dims: first().dims }, { dims: [] }, { dims: [] }];
      case "MatMul":
      case "MatMulInteger":
        return [{ dims: matmul(input(0).dims, input(1).dims) }];
      case "Gather":
        return [gather(first(), input(1), attr("axis", 0))];
      case "Concat":
        return [
          concatenate(
            node.inputs.map((_, k) => input(k)),
            attr("axis", 0),
          ),
        ];
      case "Shape": {
        const dims = first().dims;
        const [from, to] = range(attr("start", 0), node.ints.get("end"), dims.length);
        const values = dims.slice(from, to);
        return [{ dims: [constant(values.length)], values }];
      }
      case "Reshape":
        return [reshape(first(), known(input(1), "shape"), attr("allowzero", 0))];
      case "Expand": {
        const shape = known(input(1), "shape");
        if (shape.some((d) => d.c < 0 || d.r < 0))
          fail(`its shape ${shownDims(shape)} holds a negative dimension`);
        return [{ dims: broadcast(first().dims, shape) }];
      }
      case "Unsqueeze": {
        const x = first();
        const axes = constants(input(1), "axes");
        const rank = x.dims.length + axes.length;
        const at = new Set(axes.map((a) => axis(a, rank)));
        if (at.size !== axes.length) fail("its axes repeat one");
        const dims: Dim[] = [];
        for (let k = 0, from = 0; k < rank; k++) dims.push(at.has(k) ? ONE : x.dims[from++]!);
        return [x.values ? { dims, values: x.values } : { dims }];
      }
      case "Squeeze": {
        const x = first();
        const given = optional(1);
        let dims: Dim[];
        if (given) {
          const at = new Set(constants(given, "axes").map((a) => axis(a, x.dims.length)));
          dims = x.dims.filter((_, k) => !at.has(k));
        } else {
          if (x.dims.some((d) => !isConstant(d)))
            fail("it has no axes and a dimension that may or may not be 1");
          dims = x.dims.filter((d) => d.c !== 1);
        }
        return [x.values ? { dims, values: x.values } : { dims }];
      }
      case "ReduceSum": {
        const x = first();
        const given = optional(1);
        const axes = given ? constants(given, "axes") : [];
        if (axes.length === 0 && attr("noop_with_empty_axes", 0) !== 0) return [{ dims: x.dims }];
        const at = new Set(
          axes.length === 0 ? x.dims.map((_, k) => k) : axes.map((a) => axis(a, x.dims.length)),
        );
        const keep = attr("keepdims", 1) !== 0;
        const dims: Dim[] = [];
        x.dims.forEach((d, k) => {
          if (!at.has(k)) dims.push(d);
          else if (keep) dims.push(ONE);
        });
        return [{ dims }];
      }
      case "Slice":
        return [slice(first(), input, optional)];
      default:
        return fail("the check has no rule for it");
    }
  }

  private key(at: number, end: number): string {
    let out = "";
    for (let i = at; i < end; i++) out += String.fromCharCode(this.bytes[i]!);
    return out;
  }
}

/** An axis in -rank..rank-1, as 0..rank-1. */
function axis(a: number, rank: number): number {
  if (!(a >= -rank && a < rank)) fail(`axis ${a} is out of range for rank ${rank}`);
  return a < 0 ? a + rank : a;
}

/** A tensor's traced values (the dimensions or constants it holds). */
function known(t: Tensor, what: string): readonly Dim[] {
  if (t.dims.length !== 1 || t.values === undefined)
    return fail(
      `its ${what} is not a one-dimensional tensor of values traced to initializers and Shape outputs`,
    );
  return t.values;
}

/** A tensor's values if every one is a constant. */
function constants(t: Tensor, what: string): number[] {
  const values = t.values;
  if (t.dims.length > 1 || values === undefined || values.some((v) => !isConstant(v)))
    return fail(`its ${what} are not constants`);
  return values.map((v) => v.c);
}

/** Multidirectional (numpy) broadcasting. */
function broadcast(a: readonly Dim[], b: readonly Dim[]): Dim[] {
  const rank = Math.max(a.length, b.length);
  const out: Dim[] = [];
  for (let k = 0; k < rank; k++) {
    const x = a[k - rank + a.length] ?? ONE;
    const y = b[k - rank + b.length] ?? ONE;
    if (isConstant(x, 1)) out.push(y);
    else if (isConstant(y, 1)) out.push(x);
    else if (same(x, y)) out.push(x);
    else if (isConstant(x) && isConstant(y)) fail(`dimensions ${x.c} and ${y.c} do not broadcast`);
    else if (x.exact && y.exact)
      fail(`dimensions ${shownDim(x)} and ${shownDim(y)} broadcast only for some numbers of candidates (n)`);
    else out.push(bound(x, y));
  }
  return out;
}

function matmul(a: readonly Dim[], b: readonly Dim[]): Dim[] {
  if (a.length === 0 || b.length === 0) fail("MatMul of a scalar");
  const left = a.length === 1 ? [ONE, a[0]!] : a;
  const right = b.length === 1 ? [b[0]!, ONE] : b;
  const k1 = left[left.length - 1]!;
  const k2 = right[right.length - 2]!;
  if (!same(k1, k2) && isConstant(k1) && isConstant(k2)) fail(`inner dimensions ${k1.c} and ${k2.c} differ`);
  const batch = broadcast(left.slice(0, -2), right.slice(0, -2));
  const out = [...batch];
  if (a.length > 1) out.push(left[left.length - 2]!);
  if (b.length > 1) out.push(right[right.length - 1]!);
  return out;
}

function gather(data: Tensor, indices: Tensor, a: number): Tensor {
  const at = axis(a, data.dims.length);
  const dims = [...data.dims.slice(0, at), ...indices.dims, ...data.dims.slice(at + 1)];
  if (data.dims.length !== 1 || data.values === undefined || indices.values === undefined) return { dims };
  const values: Dim[] = [];
  for (const index of indices.values) {
    if (!isConstant(index)) return { dims };
    const k = index.c < 0 ? index.c + data.values.length : index.c;
    if (!(k >= 0 && k < data.values.length)) fail(`index ${index.c} is out of range`);
    values.push(data.values[k]!);
  }
  return { dims, values };
}

function concatenate(parts: readonly Tensor[], a: number): Tensor {
  if (parts.length === 0) fail("it has no inputs");
  const rank = parts[0]!.dims.length;
  const at = axis(a, rank);
  const dims = [...parts[0]!.dims];
  let values: Dim[] | undefined = rank === 1 ? [] : undefined;
  for (const [k, part] of parts.entries()) {
    if (part.dims.length !== rank) fail(`its inputs have ranks ${rank} and ${part.dims.length}`);
    if (values && part.values && values.length + part.values.length <= MAX_VALUES)
      values.push(...part.values);
    else values = undefined;
    if (k === 0) continue;
    part.dims.forEach((d, j) => {
      const had = dims[j]!;
      if (j === at) dims[j] = { c: had.c + d.c, r: had.r + d.r, exact: had.exact && d.exact };
      else if (!same(had, d)) {
        if (isConstant(had) && isConstant(d)) fail(`its inputs' dimensions ${j} are ${had.c} and ${d.c}`);
        dims[j] = bound(had, d);
      }
    });
  }
  return values ? { dims, values } : { dims };
}

/** Reshape to `shape` (0: the input's dimension unless allowzero; -1: what the count leaves). */
function reshape(x: Tensor, shape: readonly Dim[], allowzero: number): Tensor {
  if (shape.length > MAX_RANK) fail(`its shape has ${shape.length} dimensions`);
  const dims: (Dim | undefined)[] = [];
  let inferred = -1;
  shape.forEach((d, k) => {
    if (isConstant(d, 0) && allowzero === 0) {
      const from = x.dims[k];
      if (from === undefined) fail(`its shape copies dimension ${k} of a tensor of rank ${x.dims.length}`);
      dims.push(from);
    } else if (isConstant(d, -1)) {
      if (inferred >= 0) fail("its shape holds -1 twice");
      inferred = k;
      dims.push(undefined);
    } else if (d.c < 0 || d.r < 0) fail(`its shape holds ${shownDim(d)}`);
    else dims.push(d);
  });
  if (inferred >= 0) {
    // The count c0 + r0·n over the other dimensions' product c1 + r1·n.
    let c0 = 1;
    let r0 = 0;
    let exact = true;
    for (const d of x.dims) {
      if (r0 > 0 && d.r > 0) fail("its input grows faster than n");
      [c0, r0] = [c0 * d.c, c0 * d.r + r0 * d.c];
      exact &&= d.exact;
    }
    let c1 = 1;
    let r1 = 0;
    for (const d of dims)
      if (d) {
        if (!d.exact) fail("-1 beside a dimension only bounded");
        if (r1 > 0 && d.r > 0) fail("its shape grows faster than n");
        [c1, r1] = [c1 * d.c, c1 * d.r + r1 * d.c];
      }
    let left: Dim;
    if (r1 === 0) {
      if (c1 === 0) return fail("-1 beside a dimension 0");
      left =
        c0 % c1 === 0 && r0 % c1 === 0
          ? { c: c0 / c1, r: r0 / c1, exact }
          : { c: Math.ceil(c0 / c1), r: Math.ceil(r0 / c1), exact: false };
    } else {
      const k = r0 / r1;
      if (!(Number.isInteger(k) && c0 === k * c1))
        return fail("-1 where the count is not a multiple of the other dimensions");
      left = { c: k, r: 0, exact };
    }
    dims[inferred] = left;
  }
  return x.values && shape.length === 1 ? { dims: dims as Dim[], values: x.values } : { dims: dims as Dim[] };
}

/** [from, to) of Shape's start and end over `rank` dimensions, clamped as opset 17 does. */
function range(start: number, end: number | undefined, rank: number): [number, number] {
  const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + rank : v, 0), rank);
  const from = clamp(start);
  return [from, Math.max(from, end === undefined ? rank : clamp(end))];
}

/** Slice by constant starts, ends, axes and steps. */
function slice(x: Tensor, input: (k: number) => Tensor, optional: (k: number) => Tensor | undefined): Tensor {
  const starts = constants(input(1), "starts");
  const ends = constants(input(2), "ends");
  const given = optional(3);
  const axes = given ? constants(given, "axes") : starts.map((_, k) => k);
  const stepsGiven = optional(4);
  const steps = stepsGiven ? constants(stepsGiven, "steps") : starts.map(() => 1);
  if (ends.length !== starts.length || axes.length !== starts.length || steps.length !== starts.length)
    fail("its starts, ends, axes and steps differ in length");
  const dims = [...x.dims];
  let values = x.dims.length === 1 ? x.values : undefined;
  const seen = new Set<number>();
  for (let k = 0; k < starts.length; k++) {
    const at = axis(axes[k]!, x.dims.length);
    if (seen.has(at)) fail("its axes repeat one");
    seen.add(at);
    const step = steps[k]!;
    if (step === 0) fail("step 0");
    const d = x.dims[at]!;
    if (isConstant(d)) {
      const [first, count] = picks(starts[k]!, ends[k]!, step, d.c);
      dims[at] = constant(count);
      if (values) {
        const from = values;
        values = Array.from({ length: count }, (_, j) => from[first + j * step]!);
      }
    } else {
      // Of n rows: at most the rows, fewer when both ends are non-negative and the end is not "the end".
      const [s, e] = [starts[k]!, ends[k]!];
      if (step > 0 && s >= 0 && e >= 0 && e < 2 ** 31)
        dims[at] = { c: Math.ceil(Math.max(0, e - s) / step), r: 0, exact: false };
      else dims[at] = { ...d, exact: false };
      values = undefined;
    }
  }
  return values ? { dims, values } : { dims };
}

/** The first index Slice picks along an axis of `length`, and how many. */
function picks(start: number, end: number, step: number, length: number): [number, number] {
  let first = start < 0 ? start + length : start;
  let last = end < 0 ? end + length : end;
  if (step > 0) {
    first = Math.min(Math.max(first, 0), length);
    last = Math.min(Math.max(last, 0), length);
    return [first, Math.max(0, Math.ceil((last - first) / step))];
  }
  first = Math.min(Math.max(first, 0), length - 1);
  last = Math.min(Math.max(last, -1), length - 1);
  return [first, Math.max(0, Math.ceil((last - first) / step))];
}
