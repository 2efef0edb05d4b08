/**
 * Bounds what an Expand node can allocate. Expand is the one listed operator whose output size a
 * tensor's values set (its shape input): a 16-byte initializer [100000000, 100000], or
 * Concat(Shape(x)[0:1], [1000000000]), would ask a 128 MB isolate for gigabytes. The factorised
 * graph needs it (trainer/export/factorised-graph.ts sideBySide broadcasts the user half over the
 * candidates: Expand(user, Concat(Shape(item, end=1), [user width]))), so instead of refusing it the
 * walker (graph-ops.ts) hands every graph holding one to this check, which traces each Expand's
 * shape input back through the graph and refuses the graph unless:
 *
 * - the shape comes from int64/int32 initializers and Shape outputs only, through Concat, Slice,
 *   Gather, Unsqueeze, Squeeze, Reshape, Identity and Cast (to int64 or int32); anything else (a
 *   graph input, arithmetic, an operator not followed) is refused as untraceable;
 * - at most MAX_EXPAND_SHAPE_DIMS of its dimensions come from Shape outputs: the length of an axis
 *   of a tensor the graph already holds (the candidates' rows, in the exporter's graph); two would
 *   multiply rows by rows;
 * - every constant dimension lies in 0..MAX_EXPAND_ROW_ELEMENTS, and so does their product, times
 *   the data input's elements where the data is an initializer (or one reshaped, cast or passed
 *   through Identity): Expand's output is at most its data's elements times its shape's product.
 *
 * So Expand's output is at most (its data's elements) × (one axis of an existing tensor) ×
 * MAX_EXPAND_ROW_ELEMENTS. A data input the graph computes is not sized here: it is a tensor the
 * graph already made, as the operands of Add, Mul or MatMul are, and broadcasting those against
 * each other is bounded by nothing this walker checks either; a bounded Expand does no more than
 * Mul by an initializer of MAX_EXPAND_ROW_ELEMENTS ones and a request-sized column would.
 *
 * Bounded work: each name is traced once (memoised), at most MAX_DEPTH nodes back from an Expand
 * (the recursion's depth), a traced tensor holds at most MAX_VALUES values, and the index of names
 * (NameIndex, compared as bytes, as onnxruntime compares them) at most MAX_NAMES. A name defined
 * twice (two nodes, a node and an initializer), or an initializer a graph input of the same name
 * may override, is not a constant; nor is a node whose start, end or to attribute is repeated.
 */
import { MAX_EXPAND_ROW_ELEMENTS, MAX_EXPAND_SHAPE_DIMS } from "../../shared/onnx-ops.ts";
import {
  ATTRIBUTE_I,
  ATTRIBUTE_NAME,
  DATA_TYPE_INT32,
  DATA_TYPE_INT64,
  NODE_ATTRIBUTE,
  NODE_INPUT,
  NODE_NAME,
  NODE_OP_TYPE,
  TENSOR_DATA_TYPE,
  TENSOR_DIMS,
  TENSOR_INT32_DATA,
  TENSOR_INT64_DATA,
  TENSOR_RAW_DATA,
  TENSOR_SEGMENT,
  VALUE_INFO_NAME,
} from "./onnx-fields.ts";
import { type Fields, intAt, LENGTH_DELIMITED, packedVarints, VARINT } from "./protobuf-fields.ts";

/**
 * What the walker records for the check as it reads the graph: byte ranges [start, stop) of the
 * model, in file order; names past MAX_NAMES are not kept (a graph with an Expand and more names is
 * refused), so a walk allocates a bounded amount whatever the graph.
 */
export class GraphParts {
  /** NodeProto messages, two numbers each; the n-th pair is node n. */
  readonly nodes = new Numbers();
  /** Node outputs' names (non-empty), three numbers each: the name's range and the node's index. */
  readonly outputs = new Numbers();
  /** TensorProto initializers, four numbers each: the message's range and its name's (-1: none). */
  readonly initializers = new Numbers();
  /** ValueInfoProto graph inputs, two numbers each. */
  readonly inputs = new Numbers();
  /** Indexes of the nodes whose op_type is Expand. */
  readonly expands: number[] = [];
  names = 0;

  node(start: number, stop: number): void {
    this.nodes.add(start, stop, 0, 0, 2);
  }
  output(start: number, stop: number, node: number): void {
    if (++this.names <= MAX_NAMES) this.outputs.add(start, stop, node, 0, 3);
  }
  initializer(start: number, stop: number, nameAt: number, nameEnd: number): void {
    if (++this.names <= MAX_NAMES) this.initializers.add(start, stop, nameAt, nameEnd, 4);
  }
  input(start: number, stop: number): void {
    if (++this.names <= MAX_NAMES) this.inputs.add(start, stop, 0, 0, 2);
  }
  expand(node: number): void {
    this.expands.push(node);
  }
}

/** Numbers in a Float64Array that doubles as it fills: a walk records thousands, cheaper than an Array. */
class Numbers {
  data = new Float64Array(64);
  length = 0;

  /** Appends the first `count` of a, b, c, d. */
  add(a: number, b: number, c: number, d: number, count: number): void {
    if (this.length + count > this.data.length) {
      const grown = new Float64Array(this.data.length * 2);
      grown.set(this.data);
      this.data = grown;
    }
    const data = this.data;
    const at = this.length;
    data[at] = a;
    data[at + 1] = b;
    if (count > 2) data[at + 2] = c;
    if (count > 3) data[at + 3] = d;
    this.length = at + count;
  }
}

/** What the check needs of the walk: its cursor, its labels and its refusal. */
export interface GraphAccess {
  fields(start: number, stop: number): Fields;
  nodeLabel(index: number, nameAt: number, nameEnd: number): string;
  shown(start: number, stop: number): string;
  refuse(why: string): never;
}

/** Values a traced tensor may hold: a shape holds one per dimension, a few. */
const MAX_VALUES = 64;
/** Inputs of a node the trace reads (a Concat may have as many as it has values). */
const MAX_INPUTS = MAX_VALUES;
/** Nodes a trace goes back through from an Expand. The exporter's shape is two deep. */
const MAX_DEPTH = 32;
/** Name lookups answered by scanning every name, before the check builds an index of them. */
const MAX_SCANS = 16;
/** Slots a name lookup probes before the index moves to strings (a half-full table probes ~1.5). */
const MAX_PROBES = 32;
/**
 * Names (node outputs, initializers, graph inputs) the check indexes, which bounds its memory to
 * a few MiB. The exporter's largest graphs define under 2,000; a graph with an Expand that defines
 * more is refused.
 */
export const MAX_NAMES = 32_768;

/** Operators whose output has as many elements as their first input. */
const COUNT_KEEPING = new Set(["Identity", "Cast", "Reshape", "Squeeze", "Unsqueeze"]);

/** What a name is defined as, beside a node's index (0 and up). */
const INPUT = -1;
const TWICE = -2;
/** Initializer j is defined as INITIALIZER - j. */
const INITIALIZER = -3;

/**
 * A traced integer tensor: its values in row-major order, a number for a constant and null for
 * the length of an axis read by Shape; values undefined: Shape of a tensor of unknown rank (all
 * its dimensions, how many unknown). rank undefined: not known, or the values' order is not.
 */
interface Traced {
  readonly values: readonly (number | null)[] | undefined;
  readonly rank: number | undefined;
}

/** A node's fields the trace reads. */
interface NodeView {
  readonly op: string;
  readonly nameAt: number;
  readonly nameEnd: number;
  /** Input names' byte ranges, two numbers each ("" is an input left out), the first MAX_INPUTS. */
  readonly inputs: number[];
  /** Whether it has more inputs than those. */
  readonly more: boolean;
  /** Whether an attribute the trace reads is given twice (which one onnxruntime takes is not its concern). */
  readonly repeated: boolean;
  /** The int attributes the trace reads: Shape's start and end, Cast's to. */
  readonly start?: number;
  readonly end?: number;
  readonly to?: number;
}

/** Refuses, through `walk`, a graph one of whose Expand nodes is unbounded (see the file comment). */
export function checkExpandBounds(bytes: Uint8Array, parts: GraphParts, walk: GraphAccess): void {
  if (parts.expands.length === 0) return;
  if (parts.names > MAX_NAMES)
    walk.refuse(`the graph defines more than ${MAX_NAMES} names, more than the Expand check reads`);
  new ExpandCheck(bytes, parts, walk).run();
}

class ExpandCheck {
  /** Each name's definition: a node index, INPUT, TWICE or INITIALIZER - j. */
  private readonly defs: NameIndex;
  /** Each definition's trace (or why it has none), and those being traced. */
  private readonly traced = new Map<number, Traced | string>();
  private readonly open = new Set<number>();
  /** Each node's output's element count, where dataElements found it (undefined: not known). */
  private readonly counted = new Map<number, number | undefined>();

  constructor(
    private readonly bytes: Uint8Array,
    private readonly parts: GraphParts,
    private readonly walk: GraphAccess,
  ) {
    const { inputs } = parts;
    const inputNames: number[] = [];
    for (let k = 0; k < inputs.length; k += 2) {
      const v = walk.fields(inputs.data[k]!, inputs.data[k + 1]!);
      let at = -1;
      let end = -1;
      while (v.next())
        if (v.field === VALUE_INFO_NAME) {
          v.expect(LENGTH_DELIMITED);
          at = v.start;
          end = v.stop;
        }
      if (at >= 0) inputNames.push(at, end);
    }
    this.defs = new NameIndex(bytes, parts, inputNames);
  }

  run(): void {
    for (const index of this.parts.expands) {
      const node = this.node(index);
      const label = `${this.walk.nodeLabel(index, node.nameAt, node.nameEnd)} is an Expand`;
      const [dataAt = 0, dataEnd = 0, shapeAt = 0, shapeEnd = 0] = node.inputs;
      if (shapeEnd === shapeAt) this.walk.refuse(`${label} without a shape input`);
      const shape = this.trace(shapeAt, shapeEnd, 0);
      if (typeof shape === "string")
        this.walk.refuse(
          `${label} whose shape cannot be traced back to constants and Shape outputs: ${shape}`,
        );
      if (shape.values === undefined)
        this.walk.refuse(`${label} whose shape holds every dimension of another tensor, how many unknown`);
      let fromShape = 0;
      let product = 1;
      const factors: string[] = [];
      for (const value of shape.values) {
        if (value === null) {
          fromShape += 1;
          continue;
        }
        if (value < 0 || value > MAX_EXPAND_ROW_ELEMENTS)
          this.walk.refuse(
            `${label} whose shape holds the dimension ${value}; a constant dimension is 0 to ${MAX_EXPAND_ROW_ELEMENTS}`,
          );
        product *= value;
        factors.push(String(value));
      }
      if (fromShape > MAX_EXPAND_SHAPE_DIMS)
        this.walk.refuse(
          `${label} whose shape takes ${fromShape} dimensions from Shape outputs; at most ${MAX_EXPAND_SHAPE_DIMS} may (rows × rows grows with the square of the request)`,
        );
      const data = dataEnd > dataAt ? this.dataElements(dataAt, dataEnd) : undefined;
      if (data !== undefined) {
        product *= data;
        factors.push(`${data} of its data`);
      }
      if (product > MAX_EXPAND_ROW_ELEMENTS)
        this.walk.refuse(
          `${label} to ${factors.join(" × ")} = ${product} elements${fromShape > 0 ? " a row" : ""}; at most ${MAX_EXPAND_ROW_ELEMENTS}`,
        );
    }
  }

  /** The tensor named bytes[at, end), traced (once for each definition), or why it cannot be. */
  private trace(at: number, end: number, depth: number): Traced | string {
    const def = this.defs.find(at, end);
    if (def === undefined) return `${this.walk.shown(at, end)} is neither an initializer nor a node's output`;
    if (def === INPUT) return `${this.walk.shown(at, end)} is a graph input`;
    if (def === TWICE) return `${this.walk.shown(at, end)} is defined more than once`;
    const known = this.traced.get(def);
    if (known !== undefined) return known;
    if (this.open.has(def)) return `${this.walk.shown(at, end)} depends on itself`;
    if (depth > MAX_DEPTH) return `it goes back more than ${MAX_DEPTH} nodes`;
    this.open.add(def);
    const result =
      def <= INITIALIZER ? this.constant(INITIALIZER - def, at, end) : this.operator(def, at, end, depth);
    this.open.delete(def);
    this.traced.set(def, result);
    return result;
  }

  /** Node `index`'s output, named bytes[at, end), from its inputs. */
  private operator(index: number, at: number, end: number, depth: number): Traced | string {
    const node = this.node(index);
    // Messages are built only for a refusal.
    const from = () =>
      `${this.walk.shown(at, end)} comes from ${this.walk.nodeLabel(index, node.nameAt, node.nameEnd)}, a ${node.op}`;
    const input = (k: number, absent?: Traced): Traced | string => {
      const inputAt = node.inputs[2 * k];
      const inputEnd = node.inputs[2 * k + 1];
      if (inputAt !== undefined && inputEnd !== undefined && inputEnd > inputAt)
        return this.trace(inputAt, inputEnd, depth + 1);
      return absent ?? `${from()} without input ${k}`;
    };
    if (node.repeated) return `${from()} whose start, end or to attribute is given twice`;
    switch (node.op) {
      case "Identity":
        return input(0);
      case "Cast": {
        const to = node.to;
        return to === DATA_TYPE_INT64 || to === DATA_TYPE_INT32
          ? input(0)
          : `${from()} to data type ${to}, not int64 or int32`;
      }
      case "Reshape":
      case "Squeeze":
      case "Unsqueeze": {
        const data = input(0);
        if (typeof data === "string") return data;
        // The values keep their row-major order; the rank follows where it is known.
        const second = input(1, { values: undefined, rank: undefined });
        const count = typeof second === "string" ? undefined : second.values?.length;
        let rank: number | undefined;
        if (data.rank !== undefined && count !== undefined)
          rank = node.op === "Reshape" ? count : data.rank + (node.op === "Unsqueeze" ? count : -count);
        return { values: data.values, rank };
      }
      case "Concat": {
        if (node.more) return `${from()} of over ${MAX_INPUTS} inputs`;
        const values: (number | null)[] = [];
        let rank: number | undefined = 1;
        for (let k = 0; 2 * k < node.inputs.length; k++) {
          const part = input(k);
          if (typeof part === "string") return part;
          if (part.values === undefined) return `${from()} of every dimension of a tensor, how many unknown`;
          if (values.length + part.values.length > MAX_VALUES)
            return `${from()} of over ${MAX_VALUES} values`;
          values.push(...part.values);
          if (part.rank !== 1) rank = undefined;
        }
        return { values, rank };
      }
      case "Shape":
        return this.shape(node, from);
      case "Gather": {
        const data = input(0);
        const indices = input(1);
        if (typeof data === "string") return data;
        if (typeof indices === "string") return indices;
        if (data.rank !== 1) return `${from()} over a tensor not known to be one-dimensional`;
        const picks = constants(indices.values);
        if (picks === undefined || indices.rank === undefined)
          return `${from()} whose indices are not constants of a known rank`;
        if (data.values === undefined) return { values: picks.map(() => null), rank: indices.rank };
        const values: (number | null)[] = [];
        for (const pick of picks) {
          const k = pick < 0 ? pick + data.values.length : pick;
          if (!(k >= 0 && k < data.values.length)) return `${from()} of index ${pick}, out of range`;
          values.push(data.values[k]!);
        }
        return { values, rank: indices.rank };
      }
      case "Slice":
        return this.slice(from, input);
      default:
        return `${from()}, which the check does not follow`;
    }
  }

  /** Shape(x, start, end): x's dimensions if x is an initializer, else lengths read at run time. */
  private shape(node: NodeView, from: () => string): Traced | string {
    const [at, end] = node.inputs;
    if (at === undefined || end === undefined) return `${from()} without an input`;
    const start = node.start ?? 0;
    const stop = node.end;
    const def = this.defs.find(at, end);
    if (def !== undefined && def <= INITIALIZER) {
      const tensor = this.tensor(INITIALIZER - def);
      if (tensor.dims === undefined) return `${from()} of an initializer of over ${MAX_VALUES} dimensions`;
      const rank = tensor.dims.length;
      const first = Math.min(Math.max(start < 0 ? start + rank : start, 0), rank);
      const last = stop === undefined ? rank : Math.min(Math.max(stop < 0 ? stop + rank : stop, 0), rank);
      return { values: tensor.dims.slice(first, Math.max(first, last)), rank: 1 };
    }
    const count = rangeBound(start, stop);
    if (count === undefined || count > MAX_VALUES) return { values: undefined, rank: 1 };
    return { values: Array.from({ length: count }, () => null), rank: 1 };
  }

  /** Slice of a one-dimensional tensor by constant starts, ends, axes and steps (one each). */
  private slice(from: () => string, input: (k: number, absent?: Traced) => Traced | string): Traced | string {
    const data = input(0);
    if (typeof data === "string") return data;
    if (data.rank !== 1) return `${from()} of a tensor not known to be one-dimensional`;
    const one = (k: number, absent?: number): number | undefined => {
      const t = input(k, absent === undefined ? undefined : { values: [absent], rank: 1 });
      if (typeof t === "string") return undefined;
      const values = constants(t.values);
      return values?.length === 1 ? values[0] : undefined;
    };
    const start = one(1);
    const stop = one(2);
    const axis = one(3, 0);
    const step = one(4, 1);
    if (start === undefined || stop === undefined || axis === undefined || step === undefined)
      return `${from()} whose starts, ends, axes or steps are not one constant each`;
    if (axis !== 0 && axis !== -1) return `${from()} along axis ${axis} of a one-dimensional tensor`;
    if (step === 0) return `${from()} of step 0`;
    if (data.values === undefined) {
      const count = step > 0 ? rangeBound(start, stop) : undefined;
      if (count === undefined || count > MAX_VALUES) return { values: undefined, rank: 1 };
      return { values: Array.from({ length: count }, () => null), rank: 1 };
    }
    const length = data.values.length;
    let first = start < 0 ? start + length : start;
    let last = stop < 0 ? stop + length : stop;
    const values: (number | null)[] = [];
    if (step > 0) {
      first = Math.min(Math.max(first, 0), length);
      last = Math.min(Math.max(last, 0), length);
      for (let k = first; k < last; k += step) values.push(data.values[k]!);
    } else {
      first = Math.min(Math.max(first, 0), length - 1);
      last = Math.min(Math.max(last, -1), length - 1);
      for (let k = first; k > last; k += step) values.push(data.values[k]!);
    }
    return { values, rank: 1 };
  }

  /** An initializer's values, if it holds at most MAX_VALUES int64 or int32 ones. */
  private constant(index: number, at: number, end: number): Traced | string {
    const t = this.tensor(index);
    const shown = () => this.walk.shown(at, end);
    if (t.segmented) return `${shown()} is an initializer in segments`;
    if (t.type !== DATA_TYPE_INT64 && t.type !== DATA_TYPE_INT32)
      return `${shown()} is an initializer of data type ${t.type}, not int64 or int32`;
    if (t.dims === undefined || t.elements > MAX_VALUES)
      return `${shown()} is an initializer of over ${MAX_VALUES} values`;
    const width = t.type === DATA_TYPE_INT64 ? 8 : 4;
    let values: number[] | undefined;
    if (t.rawAt >= 0) {
      if (t.rawEnd - t.rawAt === width * t.elements) {
        const view = new DataView(this.bytes.buffer, this.bytes.byteOffset + t.rawAt, t.rawEnd - t.rawAt);
        values = Array.from({ length: t.elements }, (_, k) =>
          width === 8 ? Number(view.getBigInt64(8 * k, true)) : view.getInt32(4 * k, true),
        );
      }
    } else {
      const typed = t.type === DATA_TYPE_INT64 ? t.int64 : t.int32;
      if (typed.length === t.elements) values = typed;
    }
    if (values === undefined) return `${shown()} is an initializer whose data does not fill its dimensions`;
    return { values, rank: t.dims.length };
  }

  /**
   * The elements of an Expand's data where it is an initializer, or one reshaped, squeezed, cast or
   * passed through Identity (which keep the count); undefined where the graph computes it. Once
   * for each definition on the way.
   */
  private dataElements(at: number, end: number): number | undefined {
    const path: number[] = [];
    let count: number | undefined;
    for (let depth = 0; depth <= MAX_DEPTH; depth++) {
      const def = this.defs.find(at, end);
      if (def === undefined || def < 0) {
        if (def !== undefined && def <= INITIALIZER) {
          const t = this.tensor(INITIALIZER - def);
          count = t.dims === undefined ? Number.POSITIVE_INFINITY : t.elements;
        }
        break;
      }
      if (this.counted.has(def)) {
        count = this.counted.get(def);
        break;
      }
      path.push(def);
      const node = this.node(def);
      const [nextAt, nextEnd] = node.inputs;
      if (!COUNT_KEEPING.has(node.op) || nextAt === undefined || nextEnd === undefined) break;
      at = nextAt;
      end = nextEnd;
    }
    for (const def of path) this.counted.set(def, count);
    return count;
  }

  /**
   * An initializer's dims (undefined past MAX_VALUES of them), element count, data type and data.
   * Repeated fields are concatenated, packed or not; of a singular field the last counts, as a
   * protobuf parser reads them.
   */
  private tensor(index: number) {
    const ranges = this.parts.initializers.data;
    const t = this.walk.fields(ranges[4 * index]!, ranges[4 * index + 1]!);
    let dims: number[] | undefined = [];
    let elements = 1;
    let type = 0;
    let rawAt = -1;
    let rawEnd = -1;
    let segmented = false;
    const int64: number[] = [];
    const int32: number[] = [];
    const add = (into: number[]) => (value: number) => {
      if (into.length <= MAX_VALUES) into.push(value);
    };
    const dim = (value: number) => {
      elements *= value < 0 ? Number.NaN : value;
      if (dims !== undefined && dims.length < MAX_VALUES) dims.push(value);
      else dims = undefined;
    };
    while (t.next())
      switch (t.field) {
        case TENSOR_DIMS:
          this.ints(t, 64, dim);
          break;
        case TENSOR_DATA_TYPE:
          t.expect(VARINT);
          type = t.value;
          break;
        case TENSOR_SEGMENT:
          segmented = true;
          break;
        case TENSOR_INT32_DATA:
          this.ints(t, 32, add(int32));
          break;
        case TENSOR_INT64_DATA:
          this.ints(t, 64, add(int64));
          break;
        case TENSOR_RAW_DATA:
          t.expect(LENGTH_DELIMITED);
          rawAt = t.start;
          rawEnd = t.stop;
      }
    // A negative dimension makes the count NaN: no tensor onnxruntime would build.
    if (Number.isNaN(elements)) dims = undefined;
    return { dims, elements, type, rawAt, rawEnd, segmented, int64, int32 };
  }

  /** A repeated integer field's values, one varint or packed; at most MAX_VALUES + 1 read. */
  private ints(f: Fields, bits: 32 | 64, each: (value: number) => void): void {
    if (f.wire === VARINT) {
      each(intAt(this.bytes, f.start, f.stop, bits));
      return;
    }
    f.expect(LENGTH_DELIMITED);
    packedVarints(this.bytes, f.start, f.stop, bits, MAX_VALUES + 1, each, (why) => this.walk.refuse(why));
  }

  /** A node's op_type, name, inputs and the int attributes the trace reads. */
  private node(index: number): NodeView {
    const ranges = this.parts.nodes.data;
    const n = this.walk.fields(ranges[2 * index]!, ranges[2 * index + 1]!);
    const view: { -readonly [K in keyof NodeView]: NodeView[K] } = {
      op: "",
      nameAt: -1,
      nameEnd: -1,
      inputs: [],
      more: false,
      repeated: false,
    };
    // The walker checked the wire types of the fields read here but an attribute's i.
    while (n.next())
      switch (n.field) {
        case NODE_INPUT:
          if (view.inputs.length < 2 * MAX_INPUTS) view.inputs.push(n.start, n.stop);
          else view.more = true;
          break;
        case NODE_NAME:
          view.nameAt = n.start;
          view.nameEnd = n.stop;
          break;
        case NODE_OP_TYPE:
          view.op = this.key(n.start, n.stop); // one of the listed operators
          break;
        case NODE_ATTRIBUTE: {
          const a = this.walk.fields(n.start, n.stop);
          let name = "";
          let value = 0; // an attribute without its i field reads as 0
          while (a.next())
            if (a.field === ATTRIBUTE_NAME) name = a.stop - a.start <= 5 ? this.key(a.start, a.stop) : "";
            else if (a.field === ATTRIBUTE_I) {
              a.expect(VARINT);
              value = intAt(this.bytes, a.start, a.stop, 64);
            }
          if (name === "start" || name === "end" || name === "to") {
            if (view[name] !== undefined) view.repeated = true;
            view[name] = value;
          }
        }
      }
    return view;
  }

  /** bytes[at, end) as a string, one char a byte: op_types and attribute names, compared as bytes. */
  private key(at: number, end: number): string {
    let out = "";
    for (let k = at; k < end; k++) out += String.fromCharCode(this.bytes[k]!);
    return out;
  }
}

/**
 * Names, as byte ranges of the model, to their definitions (graph inputs, initializers, node
 * outputs; every output of a node counts as its value: the nodes followed have one output, and
 * onnxruntime refuses one of them with more), compared byte for byte as onnxruntime compares them.
 * The first MAX_SCANS lookups scan every name (the exporter's Expand needs a handful); past them it
 * builds an open-addressing table on an FNV-1a hash of the bytes, at most half full, without a
 * string. Names crafted to collide cannot make it quadratic: past MAX_PROBES probes it moves to a
 * Map of strings (V8 seeds its string hash).
 */
class NameIndex {
  private lookups = 0;
  private starts: number[] = [];
  private stops: number[] = [];
  private defs: number[] = [];
  /** Entry + 1 for each slot, 0 where empty; undefined until built. */
  private slots: Int32Array | undefined;
  private strings: Map<string, number> | undefined;
  /** The slot the last name not found would take. */
  private free = 0;

  constructor(
    private readonly bytes: Uint8Array,
    private readonly parts: GraphParts,
    private readonly inputNames: readonly number[],
  ) {}

  find(at: number, end: number): number | undefined {
    if (!this.slots && !this.strings) {
      if (++this.lookups <= MAX_SCANS) return this.scan(at, end);
      this.build();
    }
    const entry = this.entry(at, end);
    return entry < 0 ? undefined : this.defs[entry];
  }

  /** Every definition of the name, combined as define() combines them. */
  private scan(at: number, end: number): number | undefined {
    const { initializers, outputs } = this.parts;
    let def: number | undefined;
    const names = this.inputNames;
    for (let k = 0; k < names.length; k += 2)
      if (this.same(names[k]!, names[k + 1]!, at, end)) def = combine(def, INPUT);
    const inits = initializers.data;
    for (let k = 0; k < initializers.length; k += 4)
      if (this.same(inits[k + 2]!, inits[k + 3]!, at, end)) def = combine(def, INITIALIZER - k / 4);
    const outs = outputs.data;
    for (let k = 0; k < outputs.length; k += 3)
      if (this.same(outs[k]!, outs[k + 1]!, at, end)) def = combine(def, outs[k + 2]!);
    return def;
  }

  private build(): void {
    const { initializers, outputs } = this.parts;
    const names = this.inputNames;
    this.slots = new Int32Array(2 ** Math.max(4, 33 - Math.clz32(this.parts.names)));
    for (let k = 0; k < names.length; k += 2) this.define(names[k]!, names[k + 1]!, INPUT);
    const inits = initializers.data;
    for (let k = 0; k < initializers.length; k += 4)
      if (inits[k + 2]! >= 0) this.define(inits[k + 2]!, inits[k + 3]!, INITIALIZER - k / 4);
    const outs = outputs.data;
    for (let k = 0; k < outputs.length; k += 3) this.define(outs[k]!, outs[k + 1]!, outs[k + 2]!);
  }

  private define(at: number, end: number, def: number): void {
    const entry = this.entry(at, end);
    if (entry >= 0) {
      this.defs[entry] = combine(this.defs[entry], def);
      return;
    }
    this.starts.push(at);
    this.stops.push(end);
    this.defs.push(def);
    if (this.strings) this.strings.set(this.key(at, end), this.defs.length - 1);
    else this.slots![this.free] = this.defs.length;
  }

  /** The name's entry, or -1 (and `free`, the slot it would take). */
  private entry(at: number, end: number): number {
    if (this.strings) return this.strings.get(this.key(at, end)) ?? -1;
    const slots = this.slots!;
    const mask = slots.length - 1;
    let h = 0x811c9dc5;
    for (let i = at; i < end; i++) h = Math.imul(h ^ this.bytes[i]!, 0x01000193);
    for (let slot = h & mask, probes = 0; ; slot = (slot + 1) & mask, probes++) {
      if (probes === MAX_PROBES) {
        this.strings = new Map(this.defs.map((_, e) => [this.key(this.starts[e]!, this.stops[e]!), e]));
        return this.entry(at, end);
      }
      const e = slots[slot]! - 1;
      if (e < 0) {
        this.free = slot;
        return -1;
      }
      if (this.same(this.starts[e]!, this.stops[e]!, at, end)) return e;
    }
  }

  /** Whether bytes[a, aEnd) and bytes[b, bEnd) are the same name. */
  private same(a: number, aEnd: number, b: number, bEnd: number): boolean {
    if (aEnd - a !== bEnd - b || a < 0) return false;
    for (let i = 0; i < aEnd - a; i++) if (this.bytes[a + i] !== this.bytes[b + i]) return false;
    return true;
  }

  private key(at: number, end: number): string {
    let out = "";
    for (let i = at; i < end; i++) out += String.fromCharCode(this.bytes[i]!);
    return out;
  }
}

/**
 * A name's definition given another: a graph input of an initializer's name overrides it
 * (onnxruntime reads the initializer as the input's default); anything else defined twice is not
 * followed.
 */
function combine(had: number | undefined, def: number): number {
  if (had === undefined) return def;
  return (had === INPUT && def <= INITIALIZER) || (had <= INITIALIZER && def === INPUT) ? INPUT : TWICE;
}

/** The values if every one is a constant; undefined otherwise. */
function constants(values: readonly (number | null)[] | undefined): number[] | undefined {
  if (values === undefined || values.some((v) => v === null)) return undefined;
  return values as number[];
}

/**
 * The most values a range [start, stop) of a tensor's dimensions can hold, whatever its rank
 * (Shape's start and end, or a Slice's with a positive step, clamped as ONNX does); undefined where
 * that grows with the rank.
 */
function rangeBound(start: number, stop: number | undefined): number | undefined {
  if (start >= 0) return stop !== undefined && stop >= 0 ? Math.max(0, stop - start) : undefined;
  if (stop === undefined) return -start;
  return stop >= 0 ? Math.min(stop, -start) : Math.max(0, stop - start);
}
