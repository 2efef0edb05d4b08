/**
 * The graph rewrite behind the factorised export. Every architecture reads its input x only
 * through first dense layers (experts, gates, bottoms, towers): MatMul(x, W) + b. With
 * x = [x_user, x_item] up to a column permutation,
 *
 *   x·W + b = x_item·W_item + (x_user·W_user + b)
 *
 * and the bracket is one row per request: it runs at batch 1 and is broadcast by the Add. This
 * builder wraps the real one while an architecture's `toOnnx` runs: a dense kernel whose rows
 * match x is held back, and the MatMul that applies it to x becomes the two smaller ones; the
 * bias Add that follows moves onto the batch-1 term. The architectures stay unaware of it.
 * Cross layers that an architecture builds itself (single's parallel ones) read x whole
 * (x0 ⊙ map): they get `full`, x rebuilt per candidate, while their first MatMul by x still
 * splits.
 */
import type { GraphBuilder, TensorValues } from "../core/onnx-graph.ts";
import { isDenseKernel } from "./quantize.ts";

export interface SplitInput {
  /** The stand-in value name passed to the architecture as x. */
  x: string;
  /** x's width: kernels with this many rows are first-layer kernels. */
  width: number;
  /** The user-side value [1, |userRows|] and the x columns it holds, in order. */
  user: { value: string; rows: readonly number[] };
  /** The item-side value [n, |itemRows|] and the x columns it holds, in order. */
  item: { value: string; rows: readonly number[] };
  /** Builds x itself [n, width], for a node that reads it other than by a split MatMul. */
  full?: () => string;
}

interface Held {
  name: string;
  dims: readonly number[];
  values: Float32Array;
}

/** What a split MatMul stands for until its consumer is seen: item term + user term. */
interface SplitProduct {
  item: string;
  user: string;
  outputName: string | undefined;
}

export function splitFirstLayerBuilder(g: GraphBuilder, input: SplitInput): GraphBuilder {
  const held = new Map<string, Held>(); // placeholder name -> kernel
  const splits = new Map<string, SplitProduct>(); // placeholder name -> product
  const constants = new Set<string>(); // initializers of g, by name
  let placeholders = 0;
  let full: string | undefined;

  /** A placeholder that reaches any other node becomes its real value. */
  function realise(name: string): string {
    const kernel = held.get(name);
    if (kernel) {
      held.delete(name);
      const real = g.initializer(kernel.name, kernel.dims, kernel.values);
      constants.add(real);
      return real;
    }
    const product = splits.get(name);
    if (product) {
      splits.delete(name);
      return g.node("Add", [product.item, product.user], {}, product.outputName);
    }
    if (name === input.x && input.full) {
      full ??= input.full();
      return full;
    }
    if (name === input.x)
      throw new Error(
        "export --factorised: the architecture reads its input other than through a first dense layer (MatMul by a kernel)",
      );
    return name;
  }

  function split(kernel: Held): SplitProduct {
    const [, cols] = kernel.dims as [number, number];
    const layer = kernel.name.slice(0, -"/kernel".length);
    const part = (side: "user" | "item", rows: readonly number[]): string => {
      const values = new Float32Array(rows.length * cols);
      rows.forEach((row, i) => {
        values.set(kernel.values.subarray(row * cols, (row + 1) * cols), i * cols);
      });
      const w = g.initializer(`${layer}/${side}/kernel`, [rows.length, cols], values);
      return g.node("MatMul", [input[side].value, w]);
    };
    return {
      user: part("user", input.user.rows),
      item: part("item", input.item.rows),
      outputName: undefined,
    };
  }

  return {
    initializer(name: string, dims: readonly number[], values: TensorValues): string {
      if (values instanceof Float32Array && isDenseKernel(name, dims) && dims[0] === input.width) {
        const placeholder = `${input.x}/held_${placeholders++}`;
        held.set(placeholder, { name, dims, values });
        return placeholder;
      }
      const real = g.initializer(name, dims, values);
      constants.add(real);
      return real;
    },
    node(op, inputs, attributes, outputName) {
      const [a, b] = inputs;
      if (op === "MatMul" && a === input.x && b !== undefined && held.has(b) && inputs.length === 2) {
        const kernel = held.get(b)!;
        held.delete(b);
        const placeholder = `${input.x}/split_${placeholders++}`;
        splits.set(placeholder, { ...split(kernel), outputName });
        return placeholder;
      }
      // The bias Add of a split layer: add the bias to the batch-1 term, then broadcast.
      if (op === "Add" && inputs.length === 2 && a !== undefined && b !== undefined) {
        const product = splits.get(a) ?? splits.get(b);
        const other = splits.has(a) ? b : a;
        if (product && constants.has(other)) {
          splits.delete(splits.has(a) ? a : b);
          return g.node("Add", [product.item, g.node("Add", [product.user, other])], attributes, outputName);
        }
      }
      return g.node(op, inputs.map(realise), attributes, outputName);
    },
    input: (name, type, dims) => g.input(name, type, dims),
    output: (name, type, dims, as) => g.output(realise(name), type, dims, as),
    toBytes: (metadata) => g.toBytes(metadata),
  };
}
