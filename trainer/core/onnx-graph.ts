/**
 * A small typed builder for ONNX graphs on top of onnx-proto: initializers, nodes, inputs,
 * outputs, then `toBytes`. Architectures describe their graph with it; nothing else here knows
 * about any architecture.
 */
import onnxProto from "onnx-proto";

const { onnx } = onnxProto;

export const ONNX_OPSET = 17;
export const ONNX_IR_VERSION = 8;

export type ElementType = "float32" | "int8" | "int32" | "int64";
export type TensorValues = Float32Array | Int8Array | Int32Array | BigInt64Array;
type AttributeValue = number | number[] | string;

const DATA_TYPE: Record<ElementType, number> = {
  float32: onnx.TensorProto.DataType.FLOAT,
  int8: onnx.TensorProto.DataType.INT8,
  int32: onnx.TensorProto.DataType.INT32,
  int64: onnx.TensorProto.DataType.INT64,
};

/** A dimension: a fixed size or a symbolic name such as "batch". */
export type Dim = number | string;

export interface GraphBuilder {
  /** Adds a constant tensor; returns its name. */
  initializer(name: string, dims: readonly number[], values: TensorValues): string;
  /** Adds a node; returns the name of its (first) output. Output names are made unique. */
  node(
    op: string,
    inputs: readonly string[],
    attributes?: Record<string, AttributeValue>,
    outputName?: string,
  ): string;
  /**
   * Adds a node with several outputs (DynamicQuantizeLinear: value, scale, zero point); returns
   * their names, made unique. Optional: only the root builder has it, wrappers may leave it out.
   */
  nodeOutputs?(op: string, inputs: readonly string[], outputNames: readonly string[]): string[];
  input(name: string, type: ElementType, dims: readonly Dim[]): string;
  /**
   * Marks `name` as a graph output; with `as`, the output is named `as` in the file whatever
   * unique name the tensor got (a head named "a" or "mul" beside the builders' short node names):
   * a tensor that took the name first is renamed. An input of that name is an error.
   */
  output(name: string, type: ElementType, dims: readonly Dim[], as?: string): void;
  toBytes(metadata: Record<string, string>): Uint8Array;
}

export function createGraph(graphName: string): GraphBuilder {
  const nodes: onnxProto.onnx.INodeProto[] = [];
  const initializers: onnxProto.onnx.ITensorProto[] = [];
  const inputs: onnxProto.onnx.IValueInfoProto[] = [];
  const outputs: onnxProto.onnx.IValueInfoProto[] = [];
  const used = new Set<string>();
  const renames: [from: string, to: string][] = [];

  function unique(base: string): string {
    let name = base;
    for (let i = 1; used.has(name); i++) name = `${base}_${i}`;
    used.add(name);
    return name;
  }

  /** Every reference to tensor `from` (node inputs and outputs, initializers, graph outputs) becomes `to`. */
  function renameTensor(from: string, to: string): void {
    const swap = (names: string[] | null | undefined) =>
      names?.forEach((n, i) => {
        if (n === from) names[i] = to;
      });
    for (const n of nodes) {
      swap(n.input);
      swap(n.output);
    }
    for (const t of initializers) if (t.name === from) t.name = to;
    for (const o of outputs) if (o.name === from) o.name = to;
  }

  return {
    initializer(name, dims, values) {
      const unique_ = unique(name);
      initializers.push({
        name: unique_,
        dims: [...dims],
        dataType: DATA_TYPE[elementType(values)],
        rawData: littleEndianBytes(values),
      });
      return unique_;
    },
    node(op, nodeInputs, attributes = {}, outputName) {
      const out = unique(outputName ?? op.toLowerCase());
      nodes.push({
        opType: op,
        input: [...nodeInputs],
        output: [out],
        attribute: Object.entries(attributes).map(([name, value]) => attribute(name, value)),
      });
      return out;
    },
    nodeOutputs(op, nodeInputs, outputNames) {
      const outs = outputNames.map(unique);
      nodes.push({ opType: op, input: [...nodeInputs], output: outs, attribute: [] });
      return outs;
    },
    input(name, type, dims) {
      used.add(name);
      inputs.push(valueInfo(name, type, dims));
      return name;
    },
    output(name, type, dims, as) {
      if (as !== undefined && as !== name) {
        if (inputs.some((i) => i.name === as))
          throw new Error(`export: output "${as}" has the name of a graph input; rename it`);
        if (renames.some(([, to]) => to === as)) throw new Error(`export: two outputs named "${as}"`);
        renames.push([name, as]);
      }
      outputs.push(valueInfo(name, type, dims));
    },
    toBytes(metadata) {
      for (const [from, to] of renames) {
        // The tensor that holds the name now moves to a fresh one, then the output takes it.
        if (used.has(to)) renameTensor(to, unique(to));
        renameTensor(from, to);
        used.add(to);
      }
      renames.length = 0;
      const model = onnx.ModelProto.create({
        irVersion: ONNX_IR_VERSION,
        opsetImport: [{ domain: "", version: ONNX_OPSET }],
        producerName: "mtrank",
        graph: { name: graphName, node: nodes, initializer: initializers, input: inputs, output: outputs },
        metadataProps: Object.entries(metadata).map(([key, value]) => ({ key, value })),
      });
      return onnx.ModelProto.encode(model).finish();
    },
  };
}

function valueInfo(name: string, type: ElementType, dims: readonly Dim[]): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: DATA_TYPE[type],
        shape: { dim: dims.map((d) => (typeof d === "number" ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function attribute(name: string, value: AttributeValue): onnxProto.onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof value === "string") return { name, type: T.STRING, s: new TextEncoder().encode(value) };
  if (Array.isArray(value)) return { name, type: T.INTS, ints: value };
  return Number.isInteger(value) ? { name, type: T.INT, i: value } : { name, type: T.FLOAT, f: value };
}

/** The TensorProto data type number of an element type (e.g. the `to` attribute of a Cast). */
export function onnxDataType(type: ElementType): number {
  return DATA_TYPE[type];
}

export function elementType(values: TensorValues): ElementType {
  if (values instanceof Float32Array) return "float32";
  if (values instanceof Int8Array) return "int8";
  return values instanceof Int32Array ? "int32" : "int64";
}

/** ONNX raw_data is little-endian; copy so the bytes do not alias a larger buffer. */
function littleEndianBytes(values: TensorValues): Uint8Array {
  if (values instanceof Int8Array) return new Uint8Array(values); // one byte each: no byte order
  const bytes = new Uint8Array(values.byteLength);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < values.length; i++) {
    if (values instanceof BigInt64Array) view.setBigInt64(i * 8, values[i]!, true);
    else if (values instanceof Int32Array) view.setInt32(i * 4, values[i]!, true);
    else view.setFloat32(i * 4, values[i]!, true);
  }
  return bytes;
}
