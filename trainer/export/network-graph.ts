/**
 * The ONNX twin of models/network.ts: inputs, embedding lookup, architecture, head outputs.
 * `weights: "int8"` builds the same network with int8 weights (see quantize.ts).
 */

import type { GraphBuilder } from "../core/onnx-graph.ts";
import { axesOnnx, constant } from "../models/blocks.ts";
import { addCrossLogitsOnnx, crossNetworkOnnx, isParallelCross } from "../models/cross-network.ts";
import { type EmbeddingBlock, embeddingBlocks, modelShape, type NetworkConfig } from "../models/network.ts";
import { architecture } from "../models/registry.ts";
import type { Weights } from "../models/types.ts";
import { int8EmbeddingLookup, type SlotRows, type WeightsMode } from "./quantize.ts";
import { type Int8Form, int8DenseBuilder } from "./quantize-form.ts";

export const INPUT_DENSE = "dense";
export const INPUT_IDS = "ids";

export interface NetworkGraphOptions {
  /** float32 (default) or int8 weights. */
  weights?: WeightsMode;
  /**
   * int8: the embedding rows each id slot reads (the encoder's categorical features by slot),
   * each block getting its own scales; without it every slot is taken to read the whole table.
   */
  slotRows?: readonly SlotRows[];
  /** int8: the dense layers' form (quantize-form.ts; default DEFAULT_INT8_FORM). */
  int8Form?: Int8Form;
}

/** Adds the whole network to `g`; returns the graph input names it declared. */
export function buildNetworkGraph(
  g: GraphBuilder,
  weights: Weights,
  config: NetworkConfig,
  options: NetworkGraphOptions = {},
): { dense?: string; ids?: string } {
  const int8 = options.weights === "int8";
  const inputs: { dense?: string; ids?: string } = {};
  const parts: string[] = [];
  const widths: number[] = [];
  if (config.denseSize > 0) {
    inputs.dense = g.input(INPUT_DENSE, "float32", ["n", config.denseSize]);
    parts.push(inputs.dense);
    widths.push(config.denseSize);
  }
  if (config.idSlots > 0) {
    inputs.ids = g.input(INPUT_IDS, "int32", ["n", config.idSlots]);
    const gathered = int8 // [n, C, E]
      ? int8EmbeddingLookup(
          g,
          weights,
          "embedding",
          inputs.ids,
          options.slotRows ??
            Array.from({ length: config.idSlots }, () => ({ offset: 0, size: config.vocabSize })),
        )
      : g.node("Gather", [constant(g, weights, "embedding"), inputs.ids], { axis: 0 });
    const { blocks } = embeddingBlocks(config);
    parts.push(embeddedOnnx(g, gathered, inputs.dense, blocks, config.embeddingDim, "embedded"));
    widths.push(modelShape(config).inputWidth - config.denseSize);
  }
  const x = parts.length === 1 ? parts[0]! : g.node("Concat", parts, { axis: 1 });
  // int8 integer form: numbers and embeddings quantized apart (see GroupedInput).
  const grouped = { x, groups: parts.map((value, i) => ({ value, width: widths[i]! })) };
  const body = int8 ? int8DenseBuilder(g, options.int8Form, grouped) : g;
  addHeadOutputs(g, config, networkLogitsOnnx(body, weights, config, x));
  return inputs;
}

/** x -> one logit per head: the cross layers, stacked before the architecture or beside it. */
export function networkLogitsOnnx(
  g: GraphBuilder,
  weights: Weights,
  config: NetworkConfig,
  x: string,
): Record<string, string> {
  const xL = crossNetworkOnnx(g, weights, x);
  if (isParallelCross(weights)) return parallelCrossLogitsOnnx(g, weights, config, x, xL, weights);
  return architecture(config.arch).toOnnx(g, weights, xL, modelShape(config));
}

/**
 * The architecture on x, with the parallel cross towers' logits on x_L added to each task's own
 * logit (before esmm's product). `crossWeights` are the weights the towers read: the factorised
 * graph passes them re-indexed to its column order.
 */
export function parallelCrossLogitsOnnx(
  g: GraphBuilder,
  weights: Weights,
  config: NetworkConfig,
  x: string,
  xL: string,
  crossWeights: Weights,
): Record<string, string> {
  const arch = architecture(config.arch);
  const shape = modelShape(config);
  if (!arch.taskLogits) return addCrossLogitsOnnx(g, crossWeights, xL, arch.toOnnx(g, weights, x, shape));
  const z = addCrossLogitsOnnx(g, crossWeights, xL, arch.taskLogits.toOnnx(g, weights, x, shape));
  return arch.taskLogits.combineOnnx(g, z, shape);
}

/**
 * gathered [n, C, E] -> [n, B*E]: the blocks in order, each bag summed with its weights from
 * `dense` (Slice, Mul, ReduceSum), as networkLogits does. With no pools, one Reshape.
 */
export function embeddedOnnx(
  g: GraphBuilder,
  gathered: string,
  dense: string | undefined,
  blocks: readonly EmbeddingBlock[],
  E: number,
  name: string,
): string {
  const slice = (x: string, start: number, count: number, axis: number) =>
    g.node("Slice", [
      x,
      g.initializer(`${name}/start`, [1], new BigInt64Array([BigInt(start)])),
      g.initializer(`${name}/end`, [1], new BigInt64Array([BigInt(start + count)])),
      axesOnnx(g, [axis]),
    ]);
  let pooled = gathered;
  let width = 0;
  if (blocks.some((b) => b.weights !== undefined)) {
    const parts = blocks.map((b) => {
      const rows = slice(gathered, b.slot, b.count, 1); // [n, k, E]
      if (b.weights === undefined) return rows;
      const w = g.node("Unsqueeze", [slice(dense!, b.weights, b.count, 1), axesOnnx(g, [2])]); // [n, k, 1]
      return g.node("ReduceSum", [g.node("Mul", [rows, w]), axesOnnx(g, [1])], { keepdims: 1 }); // [n, 1, E]
    });
    pooled = g.node("Concat", parts, { axis: 1 }); // [n, B, E]
  }
  for (const b of blocks) width += b.weights === undefined ? b.count : 1;
  const shape = g.initializer(`${name}_shape`, [2], new BigInt64Array([-1n, BigInt(width * E)]));
  return g.node("Reshape", [pooled, shape], {}, name === "embedded" ? undefined : name); // [n, B*E]
}

/** One graph output per head, named after it: probability (binary) or label units (regression). */
export function addHeadOutputs(g: GraphBuilder, config: NetworkConfig, logits: Record<string, string>): void {
  for (const head of config.heads) {
    const logit = logits[head.name]!;
    let out: string;
    if (head.type === "binary") {
      const c = head.calibration;
      const z = c ? affine(g, logit, ["scale", c.scale], ["shift", c.shift]) : logit;
      out = g.node("Sigmoid", [z], {}, head.name);
    } else {
      const s = head.scale;
      const value = s ? affine(g, logit, ["std", s.std], ["mean", s.mean]) : logit;
      if (head.transform === "log1p") {
        const one = g.initializer("one", [], new Float32Array([1]));
        out = g.node("Sub", [g.node("Exp", [value]), one], {}, head.name);
      } else out = g.node("Identity", [value], {}, head.name);
    }
    // Named after the head whatever name the node got: the int8 builders' short names ("a",
    // "b", "y") and the default ones ("mul") are names a task may have.
    g.output(out, "float32", ["n", 1], head.name);
  }
}

/** a·x + b with scalar a and b (named initializers): Platt scaling, a regression head's scale. */
function affine(
  g: GraphBuilder,
  x: string,
  [aName, a]: [string, number],
  [bName, b]: [string, number],
): string {
  return g.node("Add", [
    g.node("Mul", [x, g.initializer(aName, [], new Float32Array([a]))]),
    g.initializer(bName, [], new Float32Array([b])),
  ]);
}
