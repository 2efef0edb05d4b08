/**
 * How far apart two models' AUCs are on one test file, with a 95 % interval from a paired
 * bootstrap over its rows: the same resampled rows score both models, so what the two share (the
 * file's hard and easy rows) cancels and the interval measures only their difference. Differences
 * of a few thousandths on a few thousand rows are inside it: a comparison of means over seeds
 * says nothing without it.
 *
 * The bootstrap is Poisson's (each row weighs Poisson(1) in a resample, as in Hanley & MacGibbon's
 * and Chamandy et al.'s online bootstrap): every model's rows are sorted by score once, and each
 * resample's weighted AUC is one pass over that order, O(n) instead of a sort per resample.
 */
import { createRng, type Rng } from "../core/rng.ts";

export interface PairedAucOptions {
  /** Bootstrap resamples (default 1,000). */
  resamples?: number;
  /** Seed of the resample weights (default 0): the same seed gives the same interval. */
  seed?: number;
  /** Two-sided level of the interval (default 0.95). */
  level?: number;
}

export interface AucDifference {
  /** Mean AUC of the `a` models minus the mean AUC of the `b` models, on the file as it is. */
  difference: number;
  /** The interval's ends: percentiles of the resampled differences. */
  low: number;
  high: number;
  /** Share of resamples in which `a`'s mean AUC was not above `b`'s (a one-sided p-value's estimate). */
  notAbove: number;
  resamples: number;
}

/**
 * mean over `a` of AUC(a_k) − mean over `b` of AUC(b_k), and its paired bootstrap interval. Each
 * side holds one or more score vectors (one model trained with several seeds: their mean AUC is
 * what a table reports); every vector is aligned with `labels` (1 positive, 0 negative; rows with
 * another label, NaN included, are left out).
 */
export function pairedAucDifference(
  labels: ArrayLike<number>,
  a: readonly ArrayLike<number>[],
  b: readonly ArrayLike<number>[],
  options: PairedAucOptions = {},
): AucDifference {
  const { resamples = 1000, seed = 0, level = 0.95 } = options;
  if (a.length === 0 || b.length === 0) throw new Error("pairedAucDifference: no scores to compare");
  for (const scores of [...a, ...b])
    if (scores.length !== labels.length)
      throw new Error(
        `pairedAucDifference: ${scores.length} scores for ${labels.length} labels; both models must score the same rows`,
      );
  const rows = keptRows(labels);
  const y = Uint8Array.from(rows, (i) => (labels[i] === 1 ? 1 : 0));
  const sortedA = a.map((scores) => new SortedScores(y, rows, scores));
  const sortedB = b.map((scores) => new SortedScores(y, rows, scores));
  const ones = new Float64Array(rows.length).fill(1);
  const mean = (side: SortedScores[], w: Float64Array) =>
    side.reduce((sum, s) => sum + s.auc(w), 0) / side.length;
  const difference = mean(sortedA, ones) - mean(sortedB, ones);
  const rng = createRng(seed, 0x5eed);
  const weights = new Float64Array(rows.length);
  const diffs: number[] = [];
  for (let r = 0; r < resamples; r++) {
    for (let i = 0; i < weights.length; i++) weights[i] = poissonOne(rng);
    const d = mean(sortedA, weights) - mean(sortedB, weights);
    if (Number.isFinite(d)) diffs.push(d);
  }
  return summarised(difference, diffs, level);
}

/** The difference on the rows as they are, with the interval and tail share of its resamples. */
function summarised(difference: number, diffs: number[], level: number): AucDifference {
  diffs.sort((x, z) => x - z);
  const tail = (1 - level) / 2;
  return {
    difference,
    low: quantile(diffs, tail),
    high: quantile(diffs, 1 - tail),
    notAbove: diffs.length ? diffs.filter((d) => d <= 0).length / diffs.length : Number.NaN,
    resamples: diffs.length,
  };
}

/**
 * A difference of two models' statistics over the same `rows` rows that is not a mean of per-row
 * values (R², expected calibration error), with the same Poisson bootstrap: `difference(weights)`
 * computes it with each row weighing its weight (all 1 for the rows as they are).
 */
export function pairedWeightedDifference(
  rows: number,
  difference: (weights: Float64Array) => number,
  options: PairedAucOptions = {},
): AucDifference {
  const { resamples = 1000, seed = 0, level = 0.95 } = options;
  const point = difference(new Float64Array(rows).fill(1));
  const rng = createRng(seed, 0x5eed);
  const weights = new Float64Array(rows);
  const diffs: number[] = [];
  for (let r = 0; r < resamples; r++) {
    for (let i = 0; i < rows; i++) weights[i] = poissonOne(rng);
    const d = difference(weights);
    if (Number.isFinite(d)) diffs.push(d);
  }
  return summarised(point, diffs, level);
}

/**
 * mean(a) − mean(b) of two per-row values over the same rows (two models' losses on each row),
 * with the same Poisson bootstrap as pairedAucDifference: each resample weighs the rows alike on
 * both sides, so the interval is the difference's alone.
 */
export function pairedMeanDifference(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  options: PairedAucOptions = {},
): AucDifference {
  const { resamples = 1000, seed = 0, level = 0.95 } = options;
  if (a.length !== b.length)
    throw new Error(
      `pairedMeanDifference: ${a.length} and ${b.length} values; both must cover the same rows`,
    );
  const d = Float64Array.from({ length: a.length }, (_, i) => a[i]! - b[i]!);
  if (d.some(Number.isNaN)) throw new Error("pairedMeanDifference: a value is NaN");
  const difference = d.length ? d.reduce((s, x) => s + x, 0) / d.length : Number.NaN;
  const rng = createRng(seed, 0x5eed);
  const diffs: number[] = [];
  for (let r = 0; r < resamples; r++) {
    let sum = 0;
    let weight = 0;
    for (let i = 0; i < d.length; i++) {
      const w = poissonOne(rng);
      sum += w * d[i]!;
      weight += w;
    }
    if (weight > 0) diffs.push(sum / weight);
  }
  return summarised(difference, diffs, level);
}

/**
 * AUC with a weight per row: P(score of a positive > score of a negative) + ½ P(tie), each pair
 * weighing the product of its rows' weights. With every weight 1 it is the plain AUC.
 */
export function weightedAuc(
  labels: ArrayLike<number>,
  scores: ArrayLike<number>,
  weights: ArrayLike<number>,
): number {
  const rows = keptRows(labels);
  const y = Uint8Array.from(rows, (i) => (labels[i] === 1 ? 1 : 0));
  return new SortedScores(y, rows, scores).auc(Float64Array.from(rows, (i) => weights[i]!));
}

/** One model's kept rows in ascending score order, its ties marked, for repeated weighted AUCs. */
class SortedScores {
  /** Positions (into the kept rows) in ascending score order. */
  readonly order: Int32Array;
  /** 1 where a position's score equals the next one's. */
  readonly tiedWithNext: Uint8Array;

  constructor(
    readonly y: Uint8Array,
    rows: readonly number[],
    scores: ArrayLike<number>,
  ) {
    const s = Float64Array.from(rows, (i) => scores[i]!);
    if (s.some(Number.isNaN)) throw new Error("pairedAucDifference: a score is NaN");
    this.order = Int32Array.from(s.keys()).sort((p, q) => s[p]! - s[q]!);
    this.tiedWithNext = Uint8Array.from(this.order, (p, k) =>
      k + 1 < this.order.length && s[this.order[k + 1]!] === s[p] ? 1 : 0,
    );
  }

  auc(w: Float64Array): number {
    const { order, tiedWithNext, y } = this;
    let negativesBelow = 0;
    let pairs = 0;
    let positives = 0;
    for (let k = 0; k < order.length; ) {
      // One run of tied scores: its positives beat the negatives below and tie with its own.
      let pos = 0;
      let neg = 0;
      for (;;) {
        const p = order[k]!;
        if (y[p] === 1) pos += w[p]!;
        else neg += w[p]!;
        if (tiedWithNext[k++] === 0) break;
      }
      pairs += pos * (negativesBelow + neg / 2);
      negativesBelow += neg;
      positives += pos;
    }
    return positives > 0 && negativesBelow > 0 ? pairs / (positives * negativesBelow) : Number.NaN;
  }
}

/** Indices of rows labelled 0 or 1. */
/** The rows an AUC reads: those labelled 1 or 0 (NaN, a masked row, and other labels left out). */
export function keptRows(labels: ArrayLike<number>): number[] {
  const rows: number[] = [];
  for (let i = 0; i < labels.length; i++) if (labels[i] === 0 || labels[i] === 1) rows.push(i);
  return rows;
}

/** A Poisson(1) draw by inversion (the mean is 1, so a few steps at most). */
function poissonOne(rng: Rng): number {
  const u = rng.uniform();
  let k = 0;
  let p = Math.exp(-1);
  let cumulative = p;
  while (u > cumulative && k < 20) {
    k++;
    p /= k;
    cumulative += p;
  }
  return k;
}

/** Linear-interpolated quantile of sorted values. */
function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const at = q * (sorted.length - 1);
  const lo = Math.floor(at);
  const hi = Math.min(sorted.length - 1, lo + 1);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (at - lo);
}
