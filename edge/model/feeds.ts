/**
 * Graph inputs from an encoded request, for the plain graph (every row carries every feature)
 * and for the factorised one (manifest `factorised`): user/context columns fed once as a
 * [1, k] row, item columns per candidate as [n, k], so the graph's first layers spend their
 * user-side work once per request instead of once per candidate.
 */
import type { EncodedBatch } from "../../shared/encoder/encode.ts";
import type { FactorisedInfo, FactorisedSide, ServedManifest } from "../../shared/manifest.ts";
import { Tensor } from "../runtime/ort.ts";

export type Feeds = Record<string, Tensor>;
export type FeedBuilder = (batch: EncodedBatch) => Feeds;

/** A graph input as a builder feeds it: a [rows, width] tensor. */
export interface GraphInput {
  name: string;
  type: "float32" | "int32";
  width: number;
}

/** The graph inputs a builder feeds (checked against the session before serving). */
export interface FeedPlan {
  inputs: GraphInput[];
  build: FeedBuilder;
}

/** The inputs whose name is set. */
function named(
  inputs: { name: string | undefined; type: GraphInput["type"]; width: number }[],
): GraphInput[] {
  return inputs.filter((x): x is GraphInput => x.name !== undefined);
}

export function plainFeeds(manifest: ServedManifest): FeedPlan {
  const { denseSize, idSlots } = manifest.features;
  const { dense, ids } = manifest.inputs;
  return {
    inputs: named([
      { name: dense, type: "float32", width: denseSize },
      { name: ids, type: "int32", width: idSlots },
    ]),
    build(batch) {
      const feeds: Feeds = {};
      if (dense) feeds[dense] = new Tensor("float32", batch.dense, [batch.rows, denseSize]);
      if (ids) feeds[ids] = new Tensor("int32", batch.ids, [batch.rows, idSlots]);
      return feeds;
    },
  };
}

/**
 * Slices a request batch (row 0 holds the user/context features every row shares, as
 * `encodeRequest` writes it) into the factorised graph's inputs. Column lists are typed arrays
 * made once per model; a request only copies numbers.
 */
export function factorisedFeeds(manifest: ServedManifest, info: FactorisedInfo): FeedPlan {
  const { denseSize, idSlots } = manifest.features;
  splitsColumns(info.user.dense, info.item.dense, denseSize, "dense");
  splitsColumns(info.user.ids, info.item.ids, idSlots, "ids");
  const user = columns(info.user);
  const item = columns(info.item);
  const { userDense, userIds, itemDense, itemIds } = info.inputs;
  return {
    inputs: named([
      { name: userDense, type: "float32", width: user.dense.length },
      { name: userIds, type: "int32", width: user.ids.length },
      { name: itemDense, type: "float32", width: item.dense.length },
      { name: itemIds, type: "int32", width: item.ids.length },
    ]),
    build(batch) {
      const n = batch.rows;
      const feeds: Feeds = {};
      if (userDense)
        feeds[userDense] = new Tensor(
          "float32",
          gather(batch.dense, denseSize, user.dense, 1, Float32Array),
          [1, user.dense.length],
        );
      if (userIds)
        feeds[userIds] = new Tensor("int32", gather(batch.ids, idSlots, user.ids, 1, Int32Array), [
          1,
          user.ids.length,
        ]);
      if (itemDense)
        feeds[itemDense] = new Tensor(
          "float32",
          gather(batch.dense, denseSize, item.dense, n, Float32Array),
          [n, item.dense.length],
        );
      if (itemIds)
        feeds[itemIds] = new Tensor("int32", gather(batch.ids, idSlots, item.ids, n, Int32Array), [
          n,
          item.ids.length,
        ]);
      return feeds;
    },
  };
}

/**
 * The two sides list every column of the plain batch once between them, each in ascending order:
 * the split the exporter writes (factorised-layout.ts), and the graph's layers read their inputs
 * in that order. Anything else would serve other scores than the plain graph's without failing.
 * It also ties `denseSize` and `idSlots` to the factorised inputs' widths, which openGraph
 * compares with the graph's before the trial run allocates rows of that width.
 */
function splitsColumns(user: readonly number[], item: readonly number[], width: number, kind: string): void {
  const what = `factorised.user.${kind} and factorised.item.${kind}`;
  for (const [side, list] of [
    ["user", user],
    ["item", item],
  ] as const)
    for (let i = 1; i < list.length; i++)
      if (!(list[i]! > list[i - 1]!))
        throw new Error(`factorised.${side}.${kind} must be in ascending order, each column once`);
  if (user.length + item.length !== width || new Set([...user, ...item]).size !== width)
    throw new Error(
      `${what} must split the ${width} ${kind === "dense" ? "dense columns" : "id slots"} between them, each once`,
    );
}

function columns(side: FactorisedSide): { dense: Int32Array; ids: Int32Array } {
  return { dense: Int32Array.from(side.dense), ids: Int32Array.from(side.ids) };
}

/** Rows [0, rows) of `source` (row width `width`), keeping only `cols`, row-major. */
function gather<T extends Float32Array | Int32Array>(
  source: T,
  width: number,
  cols: Int32Array,
  rows: number,
  Out: new (length: number) => T,
): T {
  const k = cols.length;
  const out = new Out(rows * k);
  for (let r = 0; r < rows; r++) {
    const from = r * width;
    const to = r * k;
    for (let j = 0; j < k; j++) out[to + j] = source[from + cols[j]!]!;
  }
  return out;
}
