/**
 * The "integer" int8 form of the dense layers: the activation is quantized at run time and the
 * product is computed in integers, instead of dequantizing the kernel on every call (the "qdq"
 * form of int8KernelsBuilder). For MatMul(x, W):
 *
 *   (xq, xs, xz) = DynamicQuantizeLinear(x)          uint8, one scale and zero point per call
 *   y = Cast(MatMulInteger(xq, W_int8, xz)) · (xs · s_W)
 *
 * with the same symmetric int8 kernel and per-column scale s_W as the qdq form, zero point 0
 * (MatMulInteger's default). Kernels under PER_TENSOR_BELOW weights (one scale: gates, towers,
 * logits) stay DequantizeLinear -> MatMul as in the qdq form. This is the pattern onnxruntime's
 * own dynamic quantizer writes (optimisation "all" ran it 7-10% faster than "disabled" on the
 * reference MMoE at 200 and 1,000 candidates). An activation read by several
 * layers (the experts and gates of MMoE and PLE) is quantized once. A kernel read other than as
 * the second input of a MatMul falls back to DequantizeLinear, so every architecture still builds.
 */
import { type GraphBuilder, onnxDataType, type TensorValues } from "../core/onnx-graph.ts";
import {
  type Int8Kernel,
  int8Kernel,
  isDenseKernel,
  PER_TENSOR_BELOW,
  type Quantized,
  quantizeInt8,
} from "./quantize.ts";

interface QuantizedActivation {
  value: string;
  scale: string;
  zeroPoint: string;
}

/**
 * An activation made of column groups with very different ranges, quantized group by group: the
 * network input x = [standardised numbers, embeddings] (values up to the clip, ~5, next to
 * embeddings of ~0.1), whose one scale left the embeddings a level or two and gave 10x qdq's
 * max |Δp|. A layer reading `x` becomes one MatMulInteger per group (the kernel's rows split,
 * its column scales shared), summed.
 *
 * The groups follow `x` through elementwise Add and Mul, which keep every column in place: the
 * cross layers' x_{l+1} = x0 ⊙ m + x_l (cross-network.ts) still holds numbers next to embeddings,
 * so a layer reading it is split the same way, its groups sliced out of it.
 */
export interface GroupedInput {
  x: string;
  /** The groups in column order: the value holding them and its width. */
  groups: readonly { value: string; width: number }[];
}

/** A value's column groups: each group's own value where one exists already, and its width. */
type ColumnGroups = readonly { value?: string; width: number }[];

const ELEMENTWISE = new Set(["Add", "Mul"]);

interface HeldKernel {
  name: string;
  dims: readonly number[];
  q: Quantized;
}

export function integerKernelsBuilder(g: GraphBuilder, grouped?: GroupedInput): GraphBuilder {
  const nodeOutputs = g.nodeOutputs?.bind(g);
  if (!nodeOutputs)
    throw new Error("export: the integer int8 form needs the root graph builder (multi-output nodes)");
  const held = new Map<string, HeldKernel>(); // placeholder -> quantized kernel, added when read
  const added = new Map<string, Int8Kernel>();
  const dequantized = new Map<string, string>(); // placeholder -> DequantizeLinear output
  const activations = new Map<string, QuantizedActivation>();
  const layouts = new Map<string, ColumnGroups>();
  if (grouped && grouped.groups.length > 1) layouts.set(grouped.x, grouped.groups);
  let placeholders = 0;

  function whole(placeholder: string, k: HeldKernel): Int8Kernel {
    let a = added.get(placeholder);
    if (!a) {
      a = {
        int8: g.initializer(`${k.name}/int8`, k.dims, k.q.values),
        scale: g.initializer("s", [k.q.scales.length], k.q.scales),
        perTensor: false,
      };
      added.set(placeholder, a);
    }
    return a;
  }

  function realise(name: string): string {
    const k = held.get(name);
    if (!k) return name;
    let w = dequantized.get(name);
    if (w === undefined) {
      const a = whole(name, k);
      w = g.node("DequantizeLinear", [a.int8, a.scale], { axis: 1 }, "w");
      dequantized.set(name, w);
    }
    return w;
  }

  /** Cast(MatMulInteger(x, W)) · (xs · s_W): short names, four nodes a layer, each name written twice. */
  function product(x: string, int8: string, scale: string, outputName?: string): string {
    const a = quantized(x);
    const p = g.node("MatMulInteger", [a.value, int8, a.zeroPoint], {}, "p"); // int32
    const k = g.node("Mul", [a.scale, scale], {}, "k");
    const f = g.node("Cast", [p], { to: onnxDataType("float32") }, "f");
    return g.node("Mul", [f, k], {}, outputName ?? "y");
  }

  /** The groups' values of `x`, each sliced out of it (columns, axis 1) where none exists. */
  function groupValues(x: string, groups: ColumnGroups): string[] {
    let start = 0;
    const values = groups.map((p) => {
      const from = start;
      start += p.width;
      return (
        p.value ??
        g.node("Slice", [
          x,
          g.initializer("c", [1], new BigInt64Array([BigInt(from)])),
          g.initializer("c", [1], new BigInt64Array([BigInt(from + p.width)])),
          g.initializer("c", [1], new BigInt64Array([1n])),
        ])
      );
    });
    layouts.set(
      x,
      values.map((value, i) => ({ value, width: groups[i]!.width })),
    );
    return values;
  }

  function quantized(x: string): QuantizedActivation {
    let a = activations.get(x);
    if (!a) {
      const [value, scale, zeroPoint] = nodeOutputs!("DynamicQuantizeLinear", [x], ["xq", "xs", "xz"]);
      a = { value: value!, scale: scale!, zeroPoint: zeroPoint! };
      activations.set(x, a);
    }
    return a;
  }

  return {
    initializer(name: string, dims: readonly number[], values: TensorValues): string {
      if (!(values instanceof Float32Array)) return g.initializer(name, dims, values);
      // A bias is read once, by the Add after its layer's product, which names the layer already.
      if (name.endsWith("/bias")) return g.initializer("b", dims, values);
      if (!isDenseKernel(name, dims)) return g.initializer(name, dims, values);
      // Small kernels (one scale) stay dequantized: their products cost little either way, and
      // four nodes a layer instead of two kept the int8 PLE above 30% of float32.
      if (values.length < PER_TENSOR_BELOW) {
        const k = int8Kernel(g, name, dims, values);
        return g.node("DequantizeLinear", [k.int8, k.scale], {}, "w");
      }
      const placeholder = `${name}/held_${placeholders++}`;
      held.set(placeholder, { name, dims, q: quantizeInt8(name, dims, values, 1) });
      return placeholder;
    },
    node(op, inputs, attributes, outputName) {
      const [x, w] = inputs;
      const k = w === undefined ? undefined : held.get(w);
      if (op === "MatMul" && inputs.length === 2 && x !== undefined && w !== undefined && k && !held.has(x)) {
        const groups = layouts.get(x);
        if (groups && k.dims[0] === groups.reduce((n, p) => n + p.width, 0)) {
          const values = groupValues(x, groups);
          const [, cols] = k.dims as [number, number];
          const scale = g.initializer("s", [cols], k.q.scales);
          // Σ_groups Cast(MatMulInteger(x_i, W_i)) · xs_i, then · s_W once: a node a layer fewer
          // than summing `product`s, which kept the int8 PLE under 30% of float32.
          let row = 0;
          const parts = groups.map((p, i) => {
            const rows = k.q.values.subarray(row * cols, (row + p.width) * cols);
            row += p.width;
            const int8 = g.initializer(
              `${k.name.slice(0, -"/kernel".length)}/${i}/kernel/int8`,
              [p.width, cols],
              rows,
            );
            const a = quantized(values[i]!);
            const product = g.node("MatMulInteger", [a.value, int8, a.zeroPoint], {}, "p");
            return g.node(
              "Mul",
              [g.node("Cast", [product], { to: onnxDataType("float32") }, "f"), a.scale],
              {},
              "m",
            );
          });
          const sum = parts.reduce((total, p) => g.node("Add", [total, p], {}, "a"));
          return g.node("Mul", [sum, scale], {}, outputName ?? "y");
        }
        const a = whole(w, k);
        return product(x, a.int8, a.scale, outputName);
      }
      // Short names for every other node too ("t_12", not "unsqueeze_12"): the grouped first
      // layers cost bytes, and each name is written at least twice.
      const y = g.node(op, inputs.map(realise), attributes, outputName ?? "t");
      if (ELEMENTWISE.has(op)) {
        const layout = sharedLayout(inputs.map((i) => layouts.get(i)));
        if (layout)
          layouts.set(
            y,
            layout.map((p) => ({ width: p.width })),
          );
      }
      return y;
    },
    input: (name, type, dims) => g.input(name, type, dims),
    output: (name, type, dims, as) => g.output(realise(name), type, dims, as),
    toBytes: (metadata) => g.toBytes(metadata),
  };
}

/** The column groups every grouped input shares (x0 ⊙ m + x_l); none if no input has any or they differ. */
function sharedLayout(found: readonly (ColumnGroups | undefined)[]): ColumnGroups | undefined {
  const grouped = found.filter((l): l is ColumnGroups => l !== undefined);
  const widths = (l: ColumnGroups) => l.map((p) => p.width).join();
  return grouped.every((l) => widths(l) === widths(grouped[0]!)) ? grouped[0] : undefined;
}
