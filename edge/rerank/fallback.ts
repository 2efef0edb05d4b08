/** Fail-safe answer: the candidates in the order the client sent, so the page still renders. */
import type { RankedItem } from "./rank.ts";
import type { Candidate } from "./schema.ts";

export type FallbackReason = "model_unavailable" | "inference_failed";

/** `order`: candidate indices in their final places (the client's order with pins and topK applied). */
export function fallbackItems(candidates: readonly Candidate[], order: readonly number[]): RankedItem[] {
  return order.map((i) => ({ id: candidates[i]!.id, score: 0, heads: {} }));
}
