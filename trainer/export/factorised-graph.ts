/**
 * The factorised twin of network-graph.ts: the same network and heads, with inputs split by
 * side. user_dense [1, Du] and user_ids [1, Cu] hold the request's user and context features,
 * item_dense [n, Di] and item_ids [n, Ci] the candidates'. Each side is embedded on its own
 * (one shared table), and the first dense layers are split (split-first-layer.ts), so the
 * user part of every first layer runs once per request instead of once per candidate.
 */
import type { FactorisedInfo, FactorisedSide } from "../../shared/manifest.ts";
import { constant } from "../models/blocks.ts";
import { modelShape, type NetworkConfig } from "../models/network.ts";
import { architecture } from "../models/registry.ts";
import type { Weights } from "../models/types.ts";
import type { FactorisedLayout } from "./factorised-layout.ts";
import { addHeadOutputs, type NetworkGraphOptions } from "./network-graph.ts";
import type { Dim, GraphBuilder } from "./onnx-graph.ts";
import { type Int8Table, int8EmbeddingTable, int8Gather, int8KernelsBuilder } from "./quantize.ts";
import { splitFirstLayerBuilder } from "./split-first-layer.ts";

export const FACTORISED_INPUTS = {
  userDense: "user_dense",
  userIds: "user_ids",
  itemDense: "item_dense",
  itemIds: "item_ids",
} as const;

/** Adds the factorised network to `g`; returns the graph input names it declared. */
export function buildFactorisedGraph(
  g: GraphBuilder,
  weights: Weights,
  config: NetworkConfig,
  layout: FactorisedLayout,
  options: NetworkGraphOptions = {},
): FactorisedInfo["inputs"] {
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
  const side = (name: "user" | "item", s: FactorisedSide, rows: Dim): string => {
    const parts: string[] = [];
    if (s.dense.length > 0) {
      const key = name === "user" ? "userDense" : "itemDense";
      inputs[key] = g.input(FACTORISED_INPUTS[key], "float32", [rows, s.dense.length]);
      parts.push(inputs[key]);
    }
    if (s.ids.length > 0) {
      const key = name === "user" ? "userIds" : "itemIds";
      inputs[key] = g.input(FACTORISED_INPUTS[key], "int32", [rows, s.ids.length]);
      const shape = g.initializer(
        `${name}/embedded_shape`,
        [2],
        new BigInt64Array([-1n, BigInt(s.ids.length * config.embeddingDim)]),
      );
      parts.push(g.node("Reshape", [embed(inputs[key], s.ids), shape], {}, `${name}/embedded`));
    }
    return parts.length === 1 ? parts[0]! : g.node("Concat", parts, { axis: 1 }, `${name}/x`);
  };
  const user = side("user", layout.user, 1);
  const item = side("item", layout.item, "n");

  // The plain x is [dense (D columns), embedded (slot s at D + s·E .. + E)].
  const E = config.embeddingDim;
  const xRows = (s: FactorisedSide): number[] => [
    ...s.dense,
    ...s.ids.flatMap((slot) => Array.from({ length: E }, (_, e) => config.denseSize + slot * E + e)),
  ];
  const shape = modelShape(config);
  const split = xRows(layout.user).length + xRows(layout.item).length;
  if (split !== shape.inputWidth)
    throw new Error(
      `export --factorised: the input layer is ${shape.inputWidth} wide but its dense columns and embeddings make ${split}: ` +
        "the factorised graph cannot split the other columns (e.g. embedding interactions) by side",
    );
  const body = splitFirstLayerBuilder(int8 ? int8KernelsBuilder(g) : g, {
    x: "x/factorised",
    width: shape.inputWidth,
    user: { value: user, rows: xRows(layout.user) },
    item: { value: item, rows: xRows(layout.item) },
  });
  const logits = architecture(config.arch).toOnnx(body, weights, "x/factorised", shape);
  addHeadOutputs(body, config, logits);
  return inputs;
}
