/**
 * Rerank requests built from the bundled model's manifest (heads, feature names, vocabularies),
 * so the edge tests hold for whichever model fixtures/model/ holds.
 */
import { exports } from "cloudflare:workers";
import manifestJson from "../../fixtures/model/manifest.json";
import type { FeatureState } from "../../shared/encoder/state.ts";
import type { ModelManifest } from "../../shared/manifest.ts";

export const manifest = manifestJson as unknown as ModelManifest;
export const headNames = manifest.heads.map((h) => h.name);

export type FeatureValue = string | number | boolean | null;
export interface CandidateBody {
  id: string;
  features: Record<string, FeatureValue>;
}

export interface RerankItem {
  id: string;
  score: number;
  heads: Record<string, number>;
  contributions?: Record<string, number>;
}
export interface RerankBody {
  model: { id: string; version: string };
  fallback: boolean;
  items: RerankItem[];
}
export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  detail: string;
  errors?: { field: string; message: string }[];
}

const features = manifest.features.features;
const side = (f: FeatureState) => f.side ?? "item";

/** A value of feature `f` that varies with `i`: vocabulary entries in turn, hashed keys, spread numbers. */
function sampleValue(f: FeatureState, i: number, k: number): FeatureValue {
  if (f.kind === "numeric") return f.mean + (f.std || 1) * (((i * (k + 3)) % 9) - 4) * 0.5;
  if (f.kind === "vector")
    return Array.from({ length: f.dim }, (_, j) => ((i + j) % 5) * 0.1).join(f.separator);
  const vocab = f.vocab;
  if (vocab && vocab.length > 0) return vocab[(i * (k + 1) + k) % vocab.length]!;
  return `${f.name}-${i}`;
}

function featuresOf(which: string, i: number): Record<string, FeatureValue> {
  return Object.fromEntries(
    features.flatMap((f, k) => (side(f) === which ? [[f.name, sampleValue(f, i, k)] as const] : [])),
  );
}

export const user = { id: "u-test", features: featuresOf("user", 0) };
export const context = { features: featuresOf("context", 0) };

/** `n` distinct candidates with ids c0..c{n-1}. */
export function candidates(n: number): CandidateBody[] {
  return Array.from({ length: n }, (_, i) => ({ id: `c${i}`, features: featuresOf("item", i) }));
}

export function rerankBody(
  extra: Record<string, unknown> & { candidates: unknown },
): Record<string, unknown> {
  return { user, context, ...extra };
}

export type Fetch = (request: Request) => Promise<Response>;
export const worker: Fetch = (request) => exports.default.fetch(request);

/** POSTs a body (an object, or a raw string sent as is) to /v1/rerank. */
export function postRerank(body: unknown, fetch: Fetch = worker): Promise<Response> {
  return fetch(
    new Request("http://mtrank.test/v1/rerank", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: typeof body === "string" ? body : JSON.stringify(body),
    }),
  );
}

export function get(path: string, fetch: Fetch = worker): Promise<Response> {
  return fetch(new Request(`http://mtrank.test${path}`));
}

/** Descending by score; the order a correct worker must return. */
export function isSortedByScore(items: readonly RerankItem[]): boolean {
  return items.every((item, i) => i === 0 || items[i - 1]!.score >= item.score);
}

/** Σ w·p over the heads the response reports. */
export function weightedSum(item: RerankItem, weights: Readonly<Record<string, number>>): number {
  return headNames.reduce((sum, h) => sum + (weights[h] ?? 0) * item.heads[h]!, 0);
}
