/**
 * The trial run a model makes while it loads: a rerank-sized request through the encoder and the
 * session. A graph that cannot run its manifest's inputs fails here, at load, so it is never
 * served (an R2 model is rejected and the slot keeps its previous one) instead of failing every
 * request. Values vary per row (vocabulary entries, numbers across the training range) so the
 * run takes the paths real requests take, not only the missing-value ones.
 *
 * It does not make the first request of an isolate cheaper when the model loads at start-up:
 * `tsx bench/edge-first.ts` (fresh workerd servers, int8 reference MMoE, 200 candidates)
 * saw the first rerank's inference at 59-95 ms with it and 75-92 ms without; later requests
 * still took 13-19 ms against ~5 ms warm. V8 warms the code over many requests, not in module
 * scope. Hence one run, not several.
 */
import type { FeatureValues } from "../../shared/encoder/encode.ts";
import type { EncoderState, FeatureState } from "../../shared/encoder/state.ts";

/** Candidates in the trial request: a typical rerank, so the memory arena already fits one. */
export const WARM_UP_ROWS = 200;
/** Trial runs at load. */
export const WARM_UP_RUNS = 1;

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
      // Around the training mean, as numbers are; zeros for a vector fed as given.
      return f.mean
        ? f.mean.map((m, i) => m + ((f.std?.[i] ?? 1) * ((r % 9) - 4)) / 2)
        : new Array<number>(f.dim).fill(0);
  }
}
