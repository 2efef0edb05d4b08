/** Rerank request bodies for the edge benchmarks: the reference model's features, seeded values. */
import type { EncodedBatch, Encoder } from "../../shared/encoder/encode.ts";
import type { EncoderState } from "../../shared/encoder/state.ts";

type Values = Record<string, string | number>;

export interface RerankBody {
  user: { id: string; features: Values };
  context: { features: Values };
  candidates: { id: string; features: Values }[];
}

/** A request with `n` candidates: categorical values hashed into the ids, numbers spread around 0. */
export function requestBody(state: EncoderState, n: number, seed: number): RerankBody {
  let s = seed * 2654435761;
  const next = () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return s / 4294967296;
  };
  const values = (side: string): Values =>
    Object.fromEntries(
      state.features
        .filter((f) => (f.side ?? "item") === side)
        .map((f) => [
          f.name,
          f.kind === "numeric"
            ? Math.round((next() * 4 - 2) * 1000) / 1000
            : `v${Math.floor(next() * 20_000)}`,
        ]),
    );
  return {
    user: { id: `u${seed}`, features: values("user") },
    context: { features: values("context") },
    candidates: Array.from({ length: n }, (_, i) => ({ id: `c${i}`, features: values("item") })),
  };
}

/** The batch the worker encodes from `body` (what session.run gets for that request). */
export function encodeBody(encoder: Encoder, body: RerankBody): EncodedBatch {
  return encoder.encodeRequest(
    { user: body.user.features, context: body.context.features },
    body.candidates.map((c) => c.features),
  );
}
