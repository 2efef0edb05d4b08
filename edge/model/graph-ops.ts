/**
 * Reads an .onnx file's protobuf before onnxruntime does and refuses a graph the exporter could
 * not have written: an operator outside shared/onnx-ops.ts's list (Loop, Scan and If run without
 * bound; ConstantOfShape, Tile, Range and Resize size their output from a tensor's values, so a
 * few bytes can ask for gigabytes in a 128 MB isolate), a node in another domain (custom
 * operators), a subgraph, a tensor whose data lives in an external file, model-local functions,
 * another opset, more nodes than MAX_GRAPH_NODES, an Expand whose output it cannot bound
 * (expand-bound.ts: Expand too sizes its output from a tensor's values, but the factorised graph
 * needs it), or a tensor whose shape it cannot infer or that could hold more than
 * MAX_TENSOR_ELEMENTS at the candidate cap (shape-bound.ts: broadcasting initializers' shapes
 * against each other sizes outputs too). R2 files are checked against the manifest's sha256, but whoever can write the bucket
 * writes the manifest too; this bounds what such a graph can make the worker do.
 *
 * The walker reads only the fields it checks, at fixed depths (ModelProto → GraphProto →
 * NodeProto → AttributeProto → TensorProto, and ModelProto → OperatorSetIdProto): it never
 * recurses, skips every other field by its length (initializer bytes are jumped over, not read),
 * allocates only per message it enters, and refuses what a protobuf parser could not read
 * (a varint past the end or over 10 bytes, a length past the end of its message, a field number
 * 0, group or reserved wire types) or reads differently (a checked field with another wire type)
 * with a GraphRefusedError, the only error it throws. Field numbers: onnx.proto (onnx-proto's
 * onnx.js encoders name them).
 */
import { EXPORTED_ONNX_OPSETS, MAX_GRAPH_NODES, SERVED_ONNX_OPS } from "../../shared/onnx-ops.ts";
import { checkExpandBounds, type GraphAccess, GraphParts } from "./expand-bound.ts";
import {
  ATTRIBUTE_G,
  ATTRIBUTE_GRAPHS,
  ATTRIBUTE_NAME,
  ATTRIBUTE_SPARSE_TENSOR,
  ATTRIBUTE_SPARSE_TENSORS,
  ATTRIBUTE_T,
  ATTRIBUTE_TENSORS,
  ATTRIBUTE_TYPE,
  ATTRIBUTE_TYPE_GRAPH,
  ATTRIBUTE_TYPE_GRAPHS,
  GRAPH_INITIALIZER,
  GRAPH_INPUT,
  GRAPH_NODE,
  GRAPH_SPARSE_INITIALIZER,
  LOCATION_EXTERNAL,
  MODEL_FUNCTIONS,
  MODEL_GRAPH,
  MODEL_OPSET_IMPORT,
  MODEL_TRAINING_INFO,
  NODE_ATTRIBUTE,
  NODE_DOMAIN,
  NODE_INPUT,
  NODE_NAME,
  NODE_OP_TYPE,
  NODE_OUTPUT,
  OPSET_DOMAIN,
  OPSET_VERSION,
  TENSOR_DATA_LOCATION,
  TENSOR_EXTERNAL_DATA,
  TENSOR_NAME,
} from "./onnx-fields.ts";
import { Fields, LENGTH_DELIMITED, text, VARINT } from "./protobuf-fields.ts";
import { checkShapeBounds } from "./shape-bound.ts";

export class GraphRefusedError extends Error {
  override name = "GraphRefusedError";
}

export interface GraphLimits {
  /** Operators allowed (default SERVED_ONNX_OPS). */
  ops?: readonly string[];
  /** Default-domain opset versions allowed (default EXPORTED_ONNX_OPSETS). */
  opsets?: { readonly min: number; readonly max: number };
  /** Nodes allowed (default MAX_GRAPH_NODES). */
  maxNodes?: number;
  /**
   * Whether to infer and bound every tensor's shape (shape-bound.ts; default true). Off only in the
   * unit tests of the other checks, over graphs whose tensors are not wired up.
   */
  shapes?: boolean;
}

/** What the walk counted in a graph it accepted. */
export interface GraphSummary {
  nodes: number;
  initializers: number;
}

function ascii(names: readonly string[]): Uint8Array[] {
  return names.map((name) => Uint8Array.from(name, (c) => c.charCodeAt(0) & 0x7f));
}

const DEFAULT_OPS = ascii(SERVED_ONNX_OPS);
const EXPAND = ascii(["Expand"]);
/** ONNX's default domain, either spelling onnxruntime accepts. */
const DEFAULT_DOMAINS = ascii(["", "ai.onnx"]);

/**
 * Refuses `model` unless it is a graph the exporter could have written (see the file comment);
 * `file` names it in the message. Returns what it counted.
 */
export function checkGraphOps(
  model: ArrayBuffer | Uint8Array,
  file: string,
  limits: GraphLimits = {},
): GraphSummary {
  const bytes = model instanceof Uint8Array ? model : new Uint8Array(model);
  return new GraphWalk(
    bytes,
    file,
    limits.ops ? ascii(limits.ops) : DEFAULT_OPS,
    limits.opsets ?? EXPORTED_ONNX_OPSETS,
    limits.maxNodes ?? MAX_GRAPH_NODES,
    limits.shapes ?? true,
  ).model();
}

/**
 * One walk. Methods, not closures, and names kept as byte ranges: a walk that accepts builds no
 * string and allocates one small cursor per message it enters; names are read into a message
 * only when refusing.
 */
class GraphWalk implements GraphAccess {
  private nodes = 0;
  private initializers = 0;
  /** The last attribute's and tensor's names (byte ranges; -1: none), for messages. */
  private attributeAt = -1;
  private attributeEnd = -1;
  private tensorAt = -1;
  private tensorEnd = -1;
  /** Whether the last attribute problem was its tensor's. */
  private inTensor = false;
  /** Where the nodes, names and Expands are, for expand-bound.ts. */
  private readonly parts = new GraphParts();
  private readonly malformed = (why: string): never => this.refuse(`not an ONNX protobuf: ${why}`);

  constructor(
    private readonly bytes: Uint8Array,
    private readonly file: string,
    private readonly ops: readonly Uint8Array[],
    private readonly opsets: { readonly min: number; readonly max: number },
    private readonly maxNodes: number,
    private readonly shapes: boolean,
  ) {}

  model(): GraphSummary {
    const top = this.fields(0, this.bytes.length);
    let graphs = 0;
    let opsetImports = 0;
    while (top.next())
      switch (top.field) {
        case MODEL_GRAPH:
          top.expect(LENGTH_DELIMITED);
          graphs += 1;
          this.graph(top.start, top.stop);
          break;
        case MODEL_OPSET_IMPORT:
          top.expect(LENGTH_DELIMITED);
          opsetImports += 1;
          this.opset(top.start, top.stop);
          break;
        case MODEL_TRAINING_INFO:
          top.expect(LENGTH_DELIMITED);
          this.refuse("it carries training_info (graphs), which the exporter never writes");
          break;
        case MODEL_FUNCTIONS:
          top.expect(LENGTH_DELIMITED);
          this.refuse("it defines model-local functions, which the exporter never writes");
      }
    if (graphs === 0) this.refuse("it has no graph");
    if (opsetImports === 0) this.refuse("it imports no opset");
    checkExpandBounds(this.bytes, this.parts, this);
    if (this.shapes) checkShapeBounds(this.bytes, this.parts, this);
    return { nodes: this.nodes, initializers: this.initializers };
  }

  /** One opset import: ONNX's default domain, at a version the exporter writes. */
  private opset(start: number, stop: number): void {
    const o = this.fields(start, stop);
    let versioned = false;
    while (o.next())
      switch (o.field) {
        case OPSET_DOMAIN:
          o.expect(LENGTH_DELIMITED);
          if (!isOneOf(this.bytes, o.start, o.stop, DEFAULT_DOMAINS))
            this.refuse(
              `it imports the opset of domain ${this.shown(o.start, o.stop)}, not ONNX's default domain`,
            );
          break;
        case OPSET_VERSION: {
          // Every occurrence is checked: a parser keeps the last one.
          o.expect(VARINT);
          const { min, max } = this.opsets;
          if (o.wide || o.value < min || o.value > max)
            this.refuse(
              `it imports opset ${o.wide ? "2^32 or more" : o.value}; the exporter writes ${min === max ? min : `${min} to ${max}`}`,
            );
          versioned = true;
        }
      }
    if (!versioned) this.refuse("it imports an opset without a version");
  }

  private graph(start: number, stop: number): void {
    const g = this.fields(start, stop);
    while (g.next())
      switch (g.field) {
        case GRAPH_NODE:
          g.expect(LENGTH_DELIMITED);
          if (this.nodes >= this.maxNodes) this.refuse(`the graph has more than ${this.maxNodes} nodes`);
          this.parts.node(g.start, g.stop);
          this.node(g.start, g.stop, this.nodes);
          this.nodes += 1;
          break;
        case GRAPH_INITIALIZER: {
          g.expect(LENGTH_DELIMITED);
          const problem = this.tensorProblem(g.start, g.stop);
          if (problem) this.refuse(`initializer ${this.initializers}${this.tensorName()} ${problem}`);
          this.parts.initializer(g.start, g.stop, this.tensorAt, this.tensorEnd);
          this.initializers += 1;
          break;
        }
        case GRAPH_INPUT:
          g.expect(LENGTH_DELIMITED);
          this.parts.input(g.start, g.stop);
          break;
        case GRAPH_SPARSE_INITIALIZER:
          g.expect(LENGTH_DELIMITED);
          this.refuse("the graph has a sparse initializer, which the exporter never writes");
      }
  }

  private node(start: number, stop: number, index: number): void {
    const n = this.fields(start, stop);
    let nameAt = -1;
    let nameEnd = -1;
    let opTypes = 0;
    let expand = false;
    while (n.next())
      switch (n.field) {
        case NODE_INPUT:
          n.expect(LENGTH_DELIMITED);
          break;
        case NODE_OUTPUT:
          n.expect(LENGTH_DELIMITED);
          if (n.stop > n.start) this.parts.output(n.start, n.stop, index);
          break;
        case NODE_NAME:
          n.expect(LENGTH_DELIMITED);
          nameAt = n.start;
          nameEnd = n.stop;
          break;
        case NODE_OP_TYPE:
          // Every occurrence is checked: a parser keeps the last one.
          n.expect(LENGTH_DELIMITED);
          opTypes += 1;
          if (!isOneOf(this.bytes, n.start, n.stop, this.ops))
            this.refuse(
              `${this.nodeLabel(index, nameAt, nameEnd)} is a ${this.shown(n.start, n.stop)}, not an operator the exporter writes`,
            );
          expand = n.stop - n.start === 6 && isOneOf(this.bytes, n.start, n.stop, EXPAND);
          break;
        case NODE_DOMAIN:
          n.expect(LENGTH_DELIMITED);
          if (!isOneOf(this.bytes, n.start, n.stop, DEFAULT_DOMAINS))
            this.refuse(
              `${this.nodeLabel(index, nameAt, nameEnd)} is in domain ${this.shown(n.start, n.stop)}, not ONNX's default domain`,
            );
          break;
        case NODE_ATTRIBUTE: {
          n.expect(LENGTH_DELIMITED);
          const problem = this.attributeProblem(n.start, n.stop);
          if (!problem) break;
          const name = this.attributeAt < 0 ? "(unnamed)" : this.shown(this.attributeAt, this.attributeEnd);
          const where = `attribute ${name} of ${this.nodeLabel(index, nameAt, nameEnd)}`;
          this.refuse(
            this.inTensor ? `tensor${this.tensorName()} of ${where} ${problem}` : `${where} ${problem}`,
          );
        }
      }
    if (opTypes === 0) this.refuse(`${this.nodeLabel(index, nameAt, nameEnd)} has no op_type`);
    if (expand) this.parts.expand(index);
  }

  /** What is wrong with an attribute (undefined: nothing); its name is left in attributeAt/End. */
  private attributeProblem(start: number, stop: number): string | undefined {
    const a = this.fields(start, stop);
    this.attributeAt = -1;
    this.attributeEnd = -1;
    this.inTensor = false;
    while (a.next())
      switch (a.field) {
        case ATTRIBUTE_NAME:
          a.expect(LENGTH_DELIMITED);
          this.attributeAt = a.start;
          this.attributeEnd = a.stop;
          break;
        case ATTRIBUTE_TYPE:
          // An int32 enum: a parser keeps the low 32 bits of the varint.
          a.expect(VARINT);
          if (a.value === ATTRIBUTE_TYPE_GRAPH || a.value === ATTRIBUTE_TYPE_GRAPHS) return "is a subgraph";
          break;
        case ATTRIBUTE_G:
        case ATTRIBUTE_GRAPHS:
          // onnxruntime builds a subgraph from the field whatever the type says.
          a.expect(LENGTH_DELIMITED);
          return "holds a subgraph";
        case ATTRIBUTE_SPARSE_TENSOR:
        case ATTRIBUTE_SPARSE_TENSORS:
          a.expect(LENGTH_DELIMITED);
          return "holds a sparse tensor";
        case ATTRIBUTE_T:
        case ATTRIBUTE_TENSORS: {
          a.expect(LENGTH_DELIMITED);
          const problem = this.tensorProblem(a.start, a.stop);
          if (problem) {
            this.inTensor = true;
            return problem;
          }
        }
      }
    return undefined;
  }

  /** What is wrong with a tensor (undefined: nothing); its name is left in tensorAt/End. */
  private tensorProblem(start: number, stop: number): string | undefined {
    const t = this.fields(start, stop);
    this.tensorAt = -1;
    this.tensorEnd = -1;
    while (t.next())
      switch (t.field) {
        case TENSOR_NAME:
          t.expect(LENGTH_DELIMITED);
          this.tensorAt = t.start;
          this.tensorEnd = t.stop;
          break;
        case TENSOR_DATA_LOCATION:
          t.expect(VARINT);
          if (t.value === LOCATION_EXTERNAL) return "keeps its data in an external file";
          break;
        case TENSOR_EXTERNAL_DATA:
          t.expect(LENGTH_DELIMITED);
          return "names external data";
      }
    return undefined;
  }

  fields(start: number, stop: number): Fields {
    return new Fields(this.bytes, start, stop, this.malformed);
  }

  nodeLabel(index: number, nameAt: number, nameEnd: number): string {
    return `node ${index}${nameAt < 0 ? "" : ` (${this.shown(nameAt, nameEnd)})`}`;
  }

  private tensorName(): string {
    return this.tensorAt < 0 ? "" : ` ${this.shown(this.tensorAt, this.tensorEnd)}`;
  }

  shown(start: number, stop: number): string {
    return `"${text(this.bytes, start, stop)}"`;
  }

  refuse(why: string): never {
    throw new GraphRefusedError(`${this.file}: ${why}; refused before onnxruntime reads it`);
  }
}

function isOneOf(bytes: Uint8Array, start: number, stop: number, names: readonly Uint8Array[]): boolean {
  const length = stop - start;
  next: for (const name of names) {
    if (name.length !== length) continue;
    for (let i = 0; i < length; i++) if (bytes[start + i] !== name[i]) continue next;
    return true;
  }
  return false;
}
