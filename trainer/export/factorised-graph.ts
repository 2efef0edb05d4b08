/**
 * The factorised twin of network-graph.ts: the same network and heads, with inputs split by
 * side. user_dense [1, Du] and user_ids [1, Cu] hold the request's user and context features,
 * item_dense [n, Di] and item_ids [n, Ci] the candidates'. Each side is embedded on its own
 * (one shared table), and the first dense layers are split (split-first-layer.ts), so the
 * user part of every first layer runs once per request instead of once per candidate.
 */
import type { FactorisedInfo, FactorisedSide } from "../../shared/manifest.ts";
import type { Dim, GraphBuilder } from "../core/onnx-graph.ts";
import { constant } from "../models/blocks.ts";
import { crossNetworkOnnx, hasStackedCross, isParallelCross } from "../models/cross-network.ts";
import { embeddingBlocks, modelShape, type NetworkConfig } from "../models/network.ts";
import type { Weights } from "../models/types.ts";
import { ExportError } from "./export-error.ts";
import type { FactorisedLayout } from "./factorised-layout.ts";
import {
  addHeadOutputs,
  embeddedOnnx,
  type NetworkGraphOptions,
  networkLogitsOnnx,
  parallelCrossLogitsOnnx,
} from "./network-graph.ts";
import { type Int8Table, int8EmbeddingTable, int8Gather } from "./quantize.ts";
import { int8DenseBuilder } from "./quantize-form.ts";
import { splitFirstLayerBuilder } from "./split-first-layer.ts";

export const FACTORISED_INPUTS = {
  userDense: "user_dense",
  userIds: "user_ids",
  itemDense: "item_dense",
  itemIds: "item_ids",
} as const;

/**
 * Stacked cross layers multiply user and item features before every first layer, so no part
 * runs once per request. Parallel ones leave the first layers on x and run beside them.
 */
export function checkNoStackedCross(weights: Weights): void {
  if (hasStackedCross(weights))
    throw new ExportError(
      "export --factorised: the model has stacked cross layers (--cross), which multiply user and item features before every first layer, so no part of it runs once per request; export it without --factorised, or train with --cross-layout parallel (or --cross 0)",
    );
}

/** Adds the factorised network to `g`; returns the graph input names it declared. */
export function buildFactorisedGraph(
  g: GraphBuilder,
  weights: Weights,
  config: NetworkConfig,
  layout: FactorisedLayout,
  options: NetworkGraphOptions = {},
): FactorisedInfo["inputs"] {
  checkNoStackedCross(weights);
  const int8 = options.weights === "int8";
  const inputs: FactorisedInfo["inputs"] = {};
  let table: string | Int8Table | undefined;
  const embed = (ids: string, slots: readonly number[]): string => {
    if (int8) {
      table ??= int8EmbeddingTable(
        g,
        weights,
        "embedding",
        options.slotRows ??
          Array.from({ length: config.idSlots }, () => ({ offset: 0, size: config.vocabSize })),
      );
      return int8Gather(g, table as Int8Table, ids, slots);
    }
    table ??= constant(g, weights, "embedding");
    return g.node("Gather", [table as string, ids], { axis: 0 });
  };
  // The plain x is [dense (D columns), embedded blocks]; xRows[side] are the x columns the
  // side's own [dense, embedded] holds, in order.
  const xRows: Record<"user" | "item", number[]> = { user: [], item: [] };
  const side = (name: "user" | "item", s: FactorisedSide, rows: Dim): string => {
    const parts: string[] = [];
    let dense: string | undefined;
    if (s.dense.length > 0) {
      const key = name === "user" ? "userDense" : "itemDense";
      dense = inputs[key] = g.input(FACTORISED_INPUTS[key], "float32", [rows, s.dense.length]);
      parts.push(dense);
    }
    xRows[name].push(...s.dense);
    if (s.ids.length > 0) {
      const key = name === "user" ? "userIds" : "itemIds";
      inputs[key] = g.input(FACTORISED_INPUTS[key], "int32", [rows, s.ids.length]);
      const { blocks, columns } = embeddingBlocks(config, s.ids, s.dense);
      const gathered = embed(inputs[key], s.ids);
      parts.push(embeddedOnnx(g, gathered, dense, blocks, config.embeddingDim, `${name}/embedded`));
      xRows[name].push(...columns);
    }
    return parts.length === 1 ? parts[0]! : g.node("Concat", parts, { axis: 1 }, `${name}/x`);
  };
  const user = side("user", layout.user, 1);
  const item = side("item", layout.item, "n");

  const shape = modelShape(config);
  const split = xRows.user.length + xRows.item.length;
  if (split !== shape.inputWidth)
    throw new Error(
      `export --factorised: the input layer is ${shape.inputWidth} wide but its dense columns and embeddings make ${split}: ` +
        "the factorised graph cannot split the other columns (e.g. embedding interactions) by side",
    );
  const sides = (): string => sideBySide(g, user, item, xRows);
  const body = splitFirstLayerBuilder(int8 ? int8DenseBuilder(g, options.int8Form) : g, {
    x: "x/factorised",
    width: shape.inputWidth,
    user: { value: user, rows: xRows.user },
    item: { value: item, rows: xRows.item },
    full: () => inXOrder(g, sides(), xRows),
  });
  let logits: Record<string, string>;
  if (isParallelCross(weights)) {
    // Shared parallel cross layers run on the two sides as they come, [user | item], with their
    // weights' columns put in that order: the same arithmetic, without reordering x per
    // candidate (a Gather along columns cost more than the layers themselves).
    const w = crossInOrder(weights, [...xRows.user, ...xRows.item]);
    logits = parallelCrossLogitsOnnx(
      body,
      weights,
      config,
      "x/factorised",
      crossNetworkOnnx(body, w, sides()),
      w,
    );
  } else logits = networkLogitsOnnx(body, weights, config, "x/factorised");
  addHeadOutputs(body, config, logits);
  return inputs;
}

/** [user repeated per candidate | item] [n, width]: x's columns, side by side. */
function sideBySide(
  g: GraphBuilder,
  user: string,
  item: string,
  xRows: Record<"user" | "item", readonly number[]>,
): string {
  const parts: string[] = [];
  if (xRows.user.length > 0) {
    const rows = g.node("Shape", [item], { end: 1 });
    const width = g.initializer("x/sides/user_width", [1], new BigInt64Array([BigInt(xRows.user.length)]));
    parts.push(g.node("Expand", [user, g.node("Concat", [rows, width], { axis: 0 })]));
  }
  if (xRows.item.length > 0) parts.push(item);
  return parts.length === 1 ? parts[0]! : g.node("Concat", parts, { axis: 1 }, "x/sides");
}

/**
 * `weights` with the shared cross layers and towers re-indexed so that position i of their
 * input is x column order[i]: the down kernels' and towers' rows, the up kernels' columns and
 * the biases. Cross layers are elementwise in x's columns, so the outputs are the same.
 */
function crossInOrder(weights: Weights, order: readonly number[]): Weights {
  const out: Weights = { ...weights };
  for (const [name, w] of Object.entries(weights)) {
    const [rows, cols = 1] = w.shape as [number, number?];
    const values = new Float32Array(w.values.length);
    if (/^cross_\d+\/down\/kernel$/.test(name) || /^cross_tower_.+\/0\/kernel$/.test(name))
      order.forEach((from, i) => {
        values.set(w.values.subarray(from * cols, (from + 1) * cols), i * cols);
      });
    else if (/^cross_\d+\/up\/kernel$/.test(name))
      for (let r = 0; r < rows; r++)
        order.forEach((from, i) => {
          values[r * cols + i] = w.values[r * cols + from]!;
        });
    else if (/^cross_\d+\/bias$/.test(name))
      order.forEach((from, i) => {
        values[i] = w.values[from]!;
      });
    else continue;
    out[name] = { shape: w.shape, values };
  }
  return out;
}

/**
 * x [n, width] in its own column order, from the side-by-side value: for cross layers that an
 * architecture builds itself (single's, one network per task), which read x whole.
 */
function inXOrder(g: GraphBuilder, sides: string, xRows: Record<"user" | "item", readonly number[]>): string {
  const order = [...xRows.user, ...xRows.item];
  const position = new BigInt64Array(order.length);
  order.forEach((column, i) => {
    position[column] = BigInt(i);
  });
  return g.node(
    "Gather",
    [sides, g.initializer("x/full/order", [order.length], position)],
    { axis: 1 },
    "x/full",
  );
}
