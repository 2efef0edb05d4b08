/**
 * int8 weight quantization for the exported graph (DIR/model.int8.onnx). The dense layers below
 * are the "qdq" form (`--int8-form qdq`); quantize-integer.ts is the "integer" form, the default.
 *
 * Scheme: symmetric int8, zero point 0, values in [-127, 127], one float32 scale per channel
 * (scale = max|w| / 127 over the channel). Dense kernels [in, out] get one scale per output
 * column and are stored "weight-only": DequantizeLinear(W_int8, scale, axis=1) feeds the same
 * MatMul as the float graph, so activations stay float32 and every architecture is quantized
 * without knowing it. Small kernels (fewer than PER_TENSOR_BELOW weights: gates, towers,
 * logits, the narrow experts of MMoE and PLE) get one scale for the whole tensor instead: their
 * per-column scales cost as many bytes as their biases, and on a small PLE they and the long
 * names of the dequantized tensors kept the int8 file at 33-36% of float32. The embedding table [V, E] is looked up as int8 and scaled after the
 * gather, one scale per (id slot, column) (see int8EmbeddingLookup). Biases and every other
 * constant stay float32.
 */

import { type GraphBuilder, onnxDataType, type TensorValues } from "../core/onnx-graph.ts";
import type { Weights } from "../models/types.ts";

export type WeightsMode = "float32" | "int8";

export interface Quantized {
  values: Int8Array;
  /** One scale per slice along the channel axis. */
  scales: Float32Array;
}

/**
 * Quantizes a row-major [rows, cols] matrix with one scale per row (axis 0) or per column
 * (axis 1). A channel of zeros gets scale 1 (all its values are 0 either way). Refuses
 * non-finite values: a NaN would otherwise quantize silently to 0.
 */
export function quantizeInt8(
  name: string,
  dims: readonly number[],
  values: Float32Array,
  axis: 0 | 1,
): Quantized {
  const [rows, cols] = dims;
  if (dims.length !== 2 || rows === undefined || cols === undefined || rows * cols !== values.length)
    throw new Error(`export: cannot quantize "${name}": expected a matrix, got shape [${dims.join(", ")}]`);
  const channels = axis === 0 ? rows : cols;
  const channelOf = axis === 0 ? (i: number) => Math.floor(i / cols) : (i: number) => i % cols;
  const maxAbs = new Float64Array(channels);
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!Number.isFinite(v))
      throw new Error(`export: cannot quantize "${name}": non-finite value (${v}) at index ${i}`);
    const c = channelOf(i);
    maxAbs[c] = Math.max(maxAbs[c]!, Math.abs(v));
  }
  // Round the scales to float32 first: the graph dequantizes with the stored float32 scale.
  const scales = Float32Array.from(maxAbs, (m) => (m > 0 ? m / 127 : 1));
  const q = new Int8Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const x = values[i]! / scales[channelOf(i)]!;
    // Round half away from zero, so w and -w quantize to opposite values.
    q[i] = Math.max(-127, Math.min(127, Math.sign(x) * Math.round(Math.abs(x))));
  }
  return { values: q, scales };
}

/**
 * Kernels with fewer weights than this share one scale (per-tensor); larger ones get one per
 * output column. At 4096 the scales of a per-channel kernel are at most 1/16 of its int8 bytes.
 */
export const PER_TENSOR_BELOW = 4096;

/**
 * Quantizes a whole tensor with one symmetric scale (max|w| / 127; 1 for an all-zero tensor),
 * refusing non-finite values like quantizeInt8.
 */
export function quantizeInt8PerTensor(name: string, values: Float32Array): Quantized {
  const flat = quantizeInt8(name, [1, values.length], values, 0);
  return { values: flat.values, scales: flat.scales };
}

/** Which float constants are dense kernels: the `${layer}/kernel` [in, out] of models/blocks.ts. */
export function isDenseKernel(name: string, dims: readonly number[]): boolean {
  return name.endsWith("/kernel") && dims.length === 2;
}

/**
 * A view of `g` in which every dense kernel added as an initializer is stored as int8 with
 * per-output-channel scales (per-tensor below PER_TENSOR_BELOW weights) and dequantized in the
 * graph; every other call goes straight to `g`. The architectures' `toOnnx` build through it
 * unchanged. The int8 initializer keeps the kernel's name (`${name}/int8`); its scale, the
 * dequantized tensor and the layer's float32 bias get short ones (`s`, `w`, `b`, numbered): in a
 * small graph the long names, each written twice or more per layer, were a tenth of the file.
 */
export function int8KernelsBuilder(g: GraphBuilder): GraphBuilder {
  return {
    initializer(name: string, dims: readonly number[], values: TensorValues): string {
      if (!(values instanceof Float32Array)) return g.initializer(name, dims, values);
      // A bias is read once, by the Add after its layer's MatMul, which names the layer already.
      if (name.endsWith("/bias")) return g.initializer("b", dims, values);
      if (!isDenseKernel(name, dims)) return g.initializer(name, dims, values);
      const k = int8Kernel(g, name, dims, values);
      return g.node("DequantizeLinear", [k.int8, k.scale], k.perTensor ? {} : { axis: 1 }, "w");
    },
    node: (op, inputs, attributes, outputName) => g.node(op, inputs, attributes, outputName),
    input: (name, type, dims) => g.input(name, type, dims),
    output: (name, type, dims, as) => g.output(name, type, dims, as),
    toBytes: (metadata) => g.toBytes(metadata),
  };
}

/** A dense kernel added to `g` as int8, with its scale initializer (scalar or [out]). */
export interface Int8Kernel {
  int8: string;
  scale: string;
  perTensor: boolean;
}

/**
 * Quantizes a dense kernel [in, out] (per-tensor below PER_TENSOR_BELOW weights, else one scale
 * per output column) and adds it as `${name}/int8` with its scale `s`.
 */
export function int8Kernel(
  g: GraphBuilder,
  name: string,
  dims: readonly number[],
  values: Float32Array,
): Int8Kernel {
  const perTensor = values.length < PER_TENSOR_BELOW;
  const q = perTensor ? quantizeInt8PerTensor(name, values) : quantizeInt8(name, dims, values, 1);
  const int8 = g.initializer(`${name}/int8`, dims, q.values);
  const scale = g.initializer("s", perTensor ? [] : [q.scales.length], q.scales);
  return { int8, scale, perTensor };
}

/** The rows of the shared embedding table that one id slot reads: [offset, offset + size). */
export interface SlotRows {
  offset: number;
  size: number;
}

/**
 * Embedding lookup ids [n, C] -> [n, C, E] from an int8 table. Slot c only ever reads its own
 * block of rows (`slots[c]`, the feature's vocabulary), so each block is quantized with one
 * scale per column and the scales are a constant [C, E], applied after the gather: the lookup
 * is Gather(int8) -> Cast -> Mul and the scales cost 4·C·E bytes whatever the vocabulary size.
 * (One scale per row would cost 4 bytes per E-byte row: +50% on the int8 table at E = 8.)
 */
export function int8EmbeddingLookup(
  g: GraphBuilder,
  weights: Weights,
  name: string,
  ids: string,
  slots: readonly SlotRows[],
): string {
  const table = int8EmbeddingTable(g, weights, name, slots);
  return int8Gather(
    g,
    table,
    ids,
    slots.map((_, c) => c),
  );
}

/** The int8 embedding table as an initializer, and its per-(slot, column) scales [C, E]. */
export interface Int8Table {
  name: string;
  /** The int8 initializer [V, E]. */
  table: string;
  dim: number;
  /** Row-major [C, E]: slot c's scales at c·E. */
  scales: Float32Array;
}

/** Quantizes the table block by block (see int8EmbeddingLookup) and adds it to `g`. */
export function int8EmbeddingTable(
  g: GraphBuilder,
  weights: Weights,
  name: string,
  slots: readonly SlotRows[],
): Int8Table {
  const table = weights[name];
  if (!table) throw new Error(`export: the saved weights have no parameter "${name}"`);
  const [rows, dim] = table.shape;
  if (table.shape.length !== 2 || rows === undefined || dim === undefined)
    throw new Error(`export: cannot quantize "${name}": expected a matrix, got [${table.shape.join(", ")}]`);
  const q = new Int8Array(table.values.length);
  const scales = new Float32Array(slots.length * dim);
  const owner = new Array<string | undefined>(rows);
  slots.forEach(({ offset, size }, c) => {
    const block = `${offset}+${size}`;
    if (offset < 0 || size < 1 || offset + size > rows)
      throw new Error(`export: id slot ${c} reads rows ${block}, outside "${name}" [${rows}, ${dim}]`);
    for (let r = offset; r < offset + size; r++) {
      if (owner[r] !== undefined && owner[r] !== block)
        throw new Error(`export: id slots read overlapping blocks of "${name}" (row ${r}): cannot quantize`);
      owner[r] = block;
    }
    const part = quantizeInt8(
      `${name}[${block}]`,
      [size, dim],
      table.values.subarray(offset * dim, (offset + size) * dim),
      1,
    );
    q.set(part.values, offset * dim);
    scales.set(part.scales, c * dim);
  });
  return { name, table: g.initializer(`${name}/int8`, table.shape, q), dim, scales };
}

/**
 * ids [n, k] of the id slots `slotIndexes` (column j holds slot slotIndexes[j]) -> [n, k, E]:
 * Gather(int8) -> Cast -> Mul by those slots' scales.
 */
export function int8Gather(
  g: GraphBuilder,
  t: Int8Table,
  ids: string,
  slotIndexes: readonly number[],
): string {
  const scales = new Float32Array(slotIndexes.length * t.dim);
  slotIndexes.forEach((slot, j) => {
    scales.set(t.scales.subarray(slot * t.dim, (slot + 1) * t.dim), j * t.dim);
  });
  const scale = g.initializer(`${t.name}/scale`, [slotIndexes.length, t.dim], scales);
  const gathered = g.node("Cast", [g.node("Gather", [t.table, ids], { axis: 0 })], {
    to: onnxDataType("float32"),
  });
  return g.node("Mul", [gathered, scale]); // [n, k, E] * [k, E]
}
