/**
 * Which model inputs belong to the request (user and context features) and which to each
 * candidate (item features): the split the factorised graph's inputs follow.
 */
import type { EncodedBatch } from "../../shared/encoder/encode.ts";
import { type EncoderState, encodedColumns } from "../../shared/encoder/state.ts";
import type { FactorisedSide } from "../../shared/manifest.ts";

export interface FactorisedLayout {
  /** User and context features: one row per request. */
  user: FactorisedSide;
  /** Item features: one row per candidate. */
  item: FactorisedSide;
}

/** Splits the plain inputs' dense columns and id slots by the side of the feature writing them. */
export function factorisedLayout(state: EncoderState): FactorisedLayout {
  const denseSide = new Array<"user" | "item" | undefined>(state.denseSize);
  const slotSide = new Array<"user" | "item" | undefined>(state.idSlots);
  const claim = (sides: ("user" | "item" | undefined)[], at: number, side: "user" | "item", what: string) => {
    if (at < 0 || at >= sides.length || sides[at] !== undefined)
      throw new Error(`export --factorised: ${what} ${at} is outside the inputs or written twice`);
    sides[at] = side;
  };
  for (const f of state.features) {
    const side = f.side === "item" ? "item" : "user";
    const { dense, ids } = encodedColumns(f);
    for (const c of dense) claim(denseSide, c, side, `feature "${f.name}": dense column`);
    for (const s of ids) claim(slotSide, s, side, `feature "${f.name}": id slot`);
  }
  const unclaimed = [...denseSide.keys()].filter((i) => denseSide[i] === undefined);
  if (unclaimed.length > 0)
    throw new Error(
      `export --factorised: no feature writes dense column ${unclaimed[0]}: cannot split the inputs`,
    );
  const unclaimedSlots = [...slotSide.keys()].filter((i) => slotSide[i] === undefined);
  if (unclaimedSlots.length > 0)
    throw new Error(
      `export --factorised: no feature writes id slot ${unclaimedSlots[0]}: cannot split the inputs`,
    );
  const pick = (sides: ("user" | "item" | undefined)[], side: "user" | "item") =>
    [...sides.keys()].filter((i) => sides[i] === side);
  const layout: FactorisedLayout = {
    user: { dense: pick(denseSide, "user"), ids: pick(slotSide, "user") },
    item: { dense: pick(denseSide, "item"), ids: pick(slotSide, "item") },
  };
  for (const side of ["user", "item"] as const) {
    if (layout[side].dense.length + layout[side].ids.length === 0)
      throw new Error(
        `export --factorised: the model has no ${side === "user" ? "user or context" : "item"} features: nothing to factorise`,
      );
  }
  return layout;
}

/** The factorised inputs of a side, taken from row `row` (user side) or every row (item side) of a plain batch. */
export function sliceBatch(
  batch: EncodedBatch,
  state: EncoderState,
  side: FactorisedSide,
  rows: { start: number; count: number },
): { dense: Float32Array; ids: Int32Array } {
  const dense = new Float32Array(rows.count * side.dense.length);
  const ids = new Int32Array(rows.count * side.ids.length);
  for (let r = 0; r < rows.count; r++) {
    const src = rows.start + r;
    side.dense.forEach((c, j) => {
      dense[r * side.dense.length + j] = batch.dense[src * state.denseSize + c]!;
    });
    side.ids.forEach((s, j) => {
      ids[r * side.ids.length + j] = batch.ids[src * state.idSlots + s]!;
    });
  }
  return { dense, ids };
}
