/**
 * What a model runs while it loads. A session's first runs cost far more than later ones (the
 * reference MMoE's first request in workerd spent ~70 ms in inference against 5 ms warm), so
 * the worker pays that at load — in start-up when the model is bundled — not in a request.
 * Values vary per row (vocabulary entries, numbers across the training range) so the warm-up
 * takes the paths real requests take, not only the missing-value ones.
 */
import type { FeatureValues } from "../../shared/encoder/encode.ts";
import type { EncoderState, FeatureState } from "../../shared/encoder/state.ts";

/** Candidates in the warm-up request: a typical rerank, so the memory arena already fits one. */
export const WARM_UP_ROWS = 200;
/** Runs at load (more did not lower the first request's cost further in workerd). */
export const WARM_UP_RUNS = 2;

export interface WarmUpRequest {
  user: { id: string; features: FeatureValues };
  context: { features: FeatureValues };
  candidates: { id: string; features: FeatureValues }[];
}

/** A rerank request body over the model's features, with plausible values. */
export function warmUpRequest(state: EncoderState, rows = WARM_UP_ROWS): WarmUpRequest {
  const valuesOf = (side: "user" | "context" | "item", r: number): FeatureValues => {
    const values: Record<string, unknown> = {};
    for (const f of state.features) {
      const value = (f.side ?? "item") === side ? sampleValue(f, r) : undefined;
      if (value !== undefined) values[f.name] = value;
    }
    return values;
  };
  return {
    user: { id: "warm-up", features: valuesOf("user", 0) },
    context: { features: valuesOf("context", 0) },
    candidates: Array.from({ length: rows }, (_, r) => ({ id: `w${r}`, features: valuesOf("item", r) })),
  };
}

function sampleValue(f: FeatureState, r: number): unknown {
  switch (f.kind) {
    case "numeric":
      return f.mean + (f.std * ((r % 9) - 4)) / 2;
    case "categorical":
      return f.vocab?.length ? f.vocab[r % f.vocab.length] : `w${r}`;
    case "multi_categorical":
      return f.vocab?.length ? [f.vocab[r % f.vocab.length], f.vocab[(r * 7) % f.vocab.length]] : [`w${r}`];
    case "vector":
      return undefined;
  }
}
