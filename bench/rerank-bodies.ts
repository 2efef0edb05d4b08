/**
 * Rerank request bodies built from a model's manifest (its features, sides and vocabularies), as
 * test/edge/requests.ts builds them for the bundled model: vocabulary entries in turn, numbers
 * spread around the fitted mean, vectors and bags in their separators. Each body has its own user,
 * context and candidates, so the worker does not see one request over and over.
 */
import type { FeatureState } from "../shared/encoder/state.ts";
import type { ModelManifest } from "../shared/manifest.ts";

type Value = string | number;

export interface RerankBody {
  user: { id: string; features: Record<string, Value> };
  context: { features: Record<string, Value> };
  candidates: { id: string; features: Record<string, Value> }[];
}

/** A value of feature `f` (the k-th) that varies with `i`. */
function sampleValue(f: FeatureState, i: number, k: number): Value {
  const pick = (vocab: readonly string[] | undefined, j: number) =>
    vocab && vocab.length > 0 ? vocab[j % vocab.length]! : `${f.name}-${j}`;
  switch (f.kind) {
    case "numeric":
      return Math.round((f.mean + (f.std || 1) * ((((i * (k + 3)) % 9) - 4) * 0.5)) * 1000) / 1000;
    case "vector":
      return Array.from({ length: f.dim }, (_, j) => ((i + j) % 5) * 0.1).join(f.separator);
    case "multi_categorical":
      return [pick(f.vocab, i * (k + 1) + k), pick(f.vocab, i * (k + 2) + 1)].join(f.separator);
    default:
      return pick(f.vocab, i * (k + 1) + k);
  }
}

function featuresOf(manifest: ModelManifest, side: string, i: number): Record<string, Value> {
  return Object.fromEntries(
    manifest.features.features.flatMap((f, k) =>
      (f.side ?? "item") === side ? [[f.name, sampleValue(f, i, k)] as const] : [],
    ),
  );
}

/** Body `seed` with `n` candidates (ids c0..c{n-1}; their features start at item seed·n). */
export function rerankBody(manifest: ModelManifest, n: number, seed: number): RerankBody {
  return {
    user: { id: `u${seed}`, features: featuresOf(manifest, "user", seed) },
    context: { features: featuresOf(manifest, "context", seed * 7 + 3) },
    candidates: Array.from({ length: n }, (_, i) => ({
      id: `c${i}`,
      features: featuresOf(manifest, "item", seed * n + i),
    })),
  };
}

/** `count` distinct bodies, JSON text ready to send. */
export function rerankBodies(manifest: ModelManifest, n: number, count: number): string[] {
  return Array.from({ length: count }, (_, seed) => JSON.stringify(rerankBody(manifest, n, seed)));
}

/** Feature names (with side and kind) of a manifest: two models take the same bodies when these match. */
export function featureSignature(manifest: ModelManifest): string {
  return manifest.features.features.map((f) => `${f.side ?? "item"}:${f.kind}:${f.name}`).join(",");
}
