/** Scores candidates with the model, fuses the heads and orders them (docs/architecture.md). */
import { type FusionMode, fuseHeads, rankByScore } from "../../shared/fusion.ts";
import type { ServerTiming } from "../http/server-timing.ts";
import type { LoadedModel } from "../model/serving-model.ts";
import type { Candidate, RerankRequest } from "./schema.ts";

export interface RankedItem {
  id: string;
  score: number;
  heads: Record<string, number>;
  /** explain: each head's share of the score (w·p for sum, w·log p for product). */
  contributions?: Record<string, number>;
}

export interface Fusion {
  weights: Readonly<Record<string, number>>;
  mode: FusionMode;
}

const NO_FEATURES = {};

export class NonFiniteScoreError extends Error {
  override name = "NonFiniteScoreError";
  constructor(id: string, output: string, value: number) {
    super(`candidate "${id}": ${output} is ${value}`);
  }
}

/**
 * Runs encode -> infer -> fuse; throws when the model does (the caller falls back).
 * `place` turns the ranked order (indices, best first) into the final list (pins, topK).
 */
export async function rankCandidates(
  model: LoadedModel,
  request: RerankRequest,
  candidates: readonly Candidate[],
  fusion: Fusion,
  timing: ServerTiming,
  place: (order: number[]) => number[],
): Promise<RankedItem[]> {
  const batch = model.encoder.encodeRequest(
    { user: request.user?.features, context: request.context?.features },
    candidates.map((c) => c.features ?? NO_FEATURES),
  );
  timing.mark("encode");
  const heads = await model.predict(batch);
  timing.mark("infer");

  const rows = candidates.length;
  const scores = fuseHeads(heads, fusion.weights, fusion.mode, rows);
  // A graph that outputs NaN or Infinity is broken: fall back rather than rank by it and answer
  // `null` where JSON cannot write the number.
  for (const [name, values] of [...Object.entries(heads), ["score", scores] as const])
    for (let i = 0; i < rows; i++)
      if (!Number.isFinite(values[i]!)) throw new NonFiniteScoreError(candidates[i]!.id, name, values[i]!);
  const order = place(rankByScore(scores));
  const names = model.manifest.heads.map((h) => h.name);
  const shares = request.explain
    ? Object.fromEntries(
        names.map((h) => [h, fuseHeads(heads, { [h]: fusion.weights[h] ?? 0 }, fusion.mode, rows)]),
      )
    : undefined;
  const items = order.map((i): RankedItem => {
    const item: RankedItem = {
      id: candidates[i]!.id,
      score: scores[i]!,
      heads: Object.fromEntries(names.map((h) => [h, heads[h]![i]!])),
    };
    if (shares) item.contributions = Object.fromEntries(names.map((h) => [h, shares[h]![i]!]));
    return item;
  });
  timing.mark("fuse");
  return items;
}

/** The weights and mode a request asks for; weights given replace the defaults (absent heads: 0). */
export function resolveFusion(request: RerankRequest, defaults: Fusion): Fusion {
  return { weights: request.weights ?? defaults.weights, mode: request.fusion ?? defaults.mode };
}

/** Duplicate candidate ids: the first occurrence is kept. */
export function uniqueCandidates(candidates: readonly Candidate[]): Candidate[] {
  const seen = new Set<string>();
  return candidates.filter((c) => {
    if (seen.has(c.id)) return false;
    seen.add(c.id);
    return true;
  });
}
