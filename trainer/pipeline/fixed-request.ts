/**
 * The fixed rerank request the infra check and the smoke test send: the worker's own warm-up
 * request (edge/model/warm-up.ts, plausible values of every feature the manifest lists), fewer
 * candidates, and a user id. Built from the manifest, so it fits whatever features the model has.
 */
import { warmUpRequest } from "../../edge/model/warm-up.ts";
import type { ModelManifest } from "../../shared/manifest.ts";

/** Candidates in the fixed request: enough to rank, small enough to read in a log. */
export const FIXED_CANDIDATES = 20;

/** The user id the pipeline's requests carry (the smoke test may pick another, see smoke.ts). */
export const PIPELINE_USER = "mtrank-pipeline";

export interface FixedRequest {
  user: { id: string; features: Record<string, unknown> };
  context: { features: Record<string, unknown> };
  candidates: { id: string; features: Record<string, unknown> }[];
}

/** A POST /v1/rerank body over the manifest's features. */
export function fixedRequest(
  manifest: Pick<ModelManifest, "features">,
  userId = PIPELINE_USER,
  candidates = FIXED_CANDIDATES,
): FixedRequest {
  const request = warmUpRequest(manifest.features, candidates);
  return {
    user: { id: userId, features: { ...request.user.features } },
    context: { features: { ...request.context.features } },
    candidates: request.candidates.map((c, i) => ({ id: `item-${i}`, features: { ...c.features } })),
  };
}
