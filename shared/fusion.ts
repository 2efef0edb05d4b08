/** Weighted fusion of per-head scores into one ranking score (docs/http-api.md, items[].score). */

export type FusionMode = "sum" | "product";

/**
 * Largest fusion weight, in requests and in a manifest's defaults. Heads are probabilities or
 * label-scale values and product fusion's logs are floored, so weights up to 1e6 keep every fused
 * score a finite number (1e308 could overflow to Infinity, which JSON writes as null).
 */
export const MAX_FUSION_WEIGHT = 1e6;

/** Smallest probability used in product fusion, so a zero head cannot make every score -Infinity. */
const FLOOR = 1e-12;

/**
 * score = Σ w·p (sum) or Π p^w (product). Product is computed in log space and returned as a
 * log score: the order is the same and long products do not underflow.
 */
export function fuseHeads(
  heads: Readonly<Record<string, ArrayLike<number>>>,
  weights: Readonly<Record<string, number>>,
  mode: FusionMode,
  rows: number,
): Float64Array {
  const scores = new Float64Array(rows);
  for (const [name, w] of Object.entries(weights)) {
    const p = heads[name];
    if (!p || w === 0) continue;
    if (mode === "sum") {
      for (let i = 0; i < rows; i++) scores[i]! += w * p[i]!;
    } else {
      for (let i = 0; i < rows; i++) scores[i]! += w * Math.log(Math.max(p[i]!, FLOOR));
    }
  }
  return scores;
}

/** Indices of rows by descending score; ties keep input order (stable). */
export function rankByScore(scores: ArrayLike<number>): number[] {
  const order = Array.from({ length: scores.length }, (_, i) => i);
  return order.sort((a, b) => scores[b]! - scores[a]! || a - b);
}
