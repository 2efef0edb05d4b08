/**
 * ONNX protobuf bytes written by hand, field by field (numbers from onnx.proto), for the tests of
 * the worker's graph walker (edge/model/graph-ops.ts): graphs the exporter never writes, and
 * malformed ones, which no ONNX library would produce.
 */

const utf8 = new TextEncoder();

type Part = Uint8Array | string;

export function concat(...parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** A varint's bytes; a negative number is written as its 64-bit two's complement (10 bytes). */
export function varint(value: number | bigint): Uint8Array {
  let v = BigInt(value);
  if (v < 0n) v += 1n << 64n;
  const out: number[] = [];
  do {
    const low = Number(v & 0x7fn);
    v >>= 7n;
    out.push(v > 0n ? low | 0x80 : low);
  } while (v > 0n);
  return Uint8Array.from(out);
}

export function tag(field: number, wire: number): Uint8Array {
  return varint(field * 8 + wire);
}

/** A length-delimited field holding `parts` (strings as UTF-8) one after another. */
export function msg(field: number, ...parts: readonly Part[]): Uint8Array {
  const payload = concat(...parts.map((p) => (typeof p === "string" ? utf8.encode(p) : p)));
  return concat(tag(field, 2), varint(payload.length), payload);
}

/** A varint field. */
export function num(field: number, value: number | bigint): Uint8Array {
  return concat(tag(field, 0), varint(value));
}

// ModelProto 8: opset_import; OperatorSetIdProto 1: domain, 2: version.
export function opset(version: number | bigint = 17, domain?: string): Uint8Array {
  return msg(8, ...(domain === undefined ? [] : [msg(1, domain)]), num(2, version));
}

// GraphProto 1: node; NodeProto 1: input, 2: output, 3: name, 4: op_type, 5: attribute, 7: domain.
export function node(opType: string, ...extra: readonly Uint8Array[]): Uint8Array {
  return msg(1, msg(1, "x"), msg(2, `y_${opType}`), msg(3, `n_${opType}`), msg(4, opType), ...extra);
}

// AttributeProto 1: name, 20: type; the value fields are the callers'.
export function attribute(name: string, type: number | bigint, ...value: readonly Uint8Array[]): Uint8Array {
  return msg(5, msg(1, name), ...value, num(20, type));
}

// GraphProto 5: initializer; TensorProto 1: dims, 2: data_type, 8: name, 9: raw_data.
export function initializer(name: string, ...extra: readonly Uint8Array[]): Uint8Array {
  return msg(5, num(1, 2), num(2, 1), msg(8, name), msg(9, new Uint8Array(8)), ...extra);
}

/** ModelProto 7: graph. */
export function graph(...fields: readonly Uint8Array[]): Uint8Array {
  return msg(7, ...fields);
}

/** A model: ir_version 8 (field 1), `opsets` (default opset 17), then the other fields. */
export function model(fields: readonly Uint8Array[], opsets: readonly Uint8Array[] = [opset()]): Uint8Array {
  return concat(num(1, 8), ...opsets, ...fields);
}

/**
 * A model's bytes with one more node appended to its graph: a second ModelProto.graph, which a
 * protobuf parser merges into the first (its nodes are added to the graph's).
 */
export function withNode(bytes: ArrayBuffer, ...nodeFields: readonly Uint8Array[]): ArrayBuffer {
  const out = concat(new Uint8Array(bytes), graph(msg(1, ...nodeFields)));
  return out.buffer as ArrayBuffer;
}

/** A node with these inputs and one output, named after its output (NodeProto 1, 2, 3, 4). */
export function wired(
  opType: string,
  inputs: readonly string[],
  output: string,
  ...extra: readonly Uint8Array[]
): Uint8Array {
  return msg(1, ...inputs.map((i) => msg(1, i)), msg(2, output), msg(3, output), msg(4, opType), ...extra);
}

/** An attribute of type INT (2) holding `value` in i (AttributeProto 3). */
export function intAttribute(name: string, value: number | bigint): Uint8Array {
  return attribute(name, 2, num(3, value));
}

/**
 * An int64 initializer (data_type 7) of these dims (default [values.length]): its values in
 * raw_data, or with `packed`, in int64_data (TensorProto 7) as packed varints.
 */
export function int64Initializer(
  name: string,
  values: readonly (number | bigint)[],
  dims: readonly number[] = [values.length],
  packed = false,
): Uint8Array {
  const data = packed
    ? msg(7, concat(...values.map((v) => varint(v))))
    : msg(9, new Uint8Array(BigInt64Array.from(values, (v) => BigInt(v)).buffer));
  return msg(5, ...dims.map((d) => num(1, d)), num(2, 7), msg(8, name), data);
}

/** A graph input (GraphProto 11) of that name (ValueInfoProto 1). */
export function graphInput(name: string): Uint8Array {
  return msg(11, msg(1, name));
}

/**
 * A float32 graph input (GraphProto 11) of these dims: ValueInfoProto 2 type → TypeProto 1
 * tensor_type (1 elem_type, 2 shape → TensorShapeProto 1 dim: 1 dim_value or 2 dim_param).
 */
export function typedInput(name: string, dims: readonly (number | string)[]): Uint8Array {
  const dim = (d: number | string) => msg(1, typeof d === "number" ? num(1, d) : msg(2, d));
  return msg(11, msg(1, name), msg(2, msg(1, num(1, 1), msg(2, ...dims.map(dim)))));
}
