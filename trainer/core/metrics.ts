/** Per-task evaluation metrics. */

/**
 * Area under the ROC curve (Mann-Whitney U, ties averaged); NaN when a class is absent or a score
 * is NaN (the sort cannot order it, and a broken model must not read as a coin flip).
 */
export function auc(labels: ArrayLike<number>, scores: ArrayLike<number>): number {
  const n = labels.length;
  for (let i = 0; i < n; i++) if (Number.isNaN(scores[i]!)) return Number.NaN;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[a]! - scores[b]!);
  let positives = 0;
  let rankSum = 0;
  for (let i = 0; i < n; ) {
    let j = i;
    while (j + 1 < n && scores[order[j + 1]!] === scores[order[i]!]) j++;
    const rank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) {
      if (labels[order[k]!]! > 0.5) {
        positives++;
        rankSum += rank;
      }
    }
    i = j + 1;
  }
  const negatives = n - positives;
  if (positives === 0 || negatives === 0) return Number.NaN;
  return (rankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}

/** Mean binary cross-entropy of probabilities, clipped away from 0 and 1. */
export function logloss(labels: ArrayLike<number>, probs: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < labels.length; i++) sum += rowLogloss(labels[i]!, probs[i]!);
  return sum / labels.length;
}

/** One row's binary cross-entropy, its probability clipped away from 0 and 1 as logloss's. */
export function rowLogloss(label: number, prob: number): number {
  const eps = 1e-7;
  const p = Math.min(1 - eps, Math.max(eps, prob));
  return label > 0.5 ? -Math.log(p) : -Math.log(1 - p);
}

export function meanSquaredError(labels: ArrayLike<number>, values: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < labels.length; i++) sum += (labels[i]! - values[i]!) ** 2;
  return sum / labels.length;
}

export function meanAbsoluteError(labels: ArrayLike<number>, values: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < labels.length; i++) sum += Math.abs(labels[i]! - values[i]!);
  return sum / labels.length;
}

/** The largest |a[i] − b[i]|: how far two models' outputs on the same rows are apart (NaN if any is). */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

/**
 * The largest |a - b| / max(1, |a|): absolute for outputs up to 1 (probabilities), relative above
 * (a regression head in label units, where float32 rounding alone moves 30 s by about 1e-5).
 */
export function maxScaledDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let max = 0;
  for (let i = 0; i < a.length; i++)
    max = Math.max(max, Math.abs(a[i]! - b[i]!) / Math.max(1, Math.abs(a[i]!)));
  return max;
}

export function mean(values: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += values[i]!;
  return sum / values.length;
}

/**
 * Mean NDCG@k over groups: rows of a group ranked by `scores` (ties keep row order), gains from
 * `gains`; groups whose ideal DCG is 0 (nothing to find) or of one row are skipped.
 */
export function meanNdcg(
  scores: ArrayLike<number>,
  gains: ArrayLike<number>,
  groups: readonly (readonly number[])[],
  k: number,
): number {
  return meanOfDefined(groupNdcgs(scores, gains, groups, k));
}

/** The mean of the values that are not NaN; NaN when none is. */
export function meanOfDefined(values: ArrayLike<number>): number {
  let sum = 0;
  let counted = 0;
  for (let i = 0; i < values.length; i++)
    if (!Number.isNaN(values[i]!)) {
      sum += values[i]!;
      counted++;
    }
  return counted > 0 ? sum / counted : Number.NaN;
}

/**
 * Each group's NDCG@k, in `groups` order; NaN (left out of meanNdcg) for a group without gains
 * or with one row: a list of one has no order to get right, and would count as a perfect 1.
 */
export function groupNdcgs(
  scores: ArrayLike<number>,
  gains: ArrayLike<number>,
  groups: readonly (readonly number[])[],
  k: number,
): Float64Array {
  return Float64Array.from(groups, (rows) => {
    if (rows.length < 2) return Number.NaN;
    const ideal = dcg(
      [...rows].sort((a, b) => gains[b]! - gains[a]!),
      gains,
      k,
    );
    if (ideal <= 0) return Number.NaN;
    const ranked = [...rows].sort((a, b) => scores[b]! - scores[a]! || a - b);
    return dcg(ranked, gains, k) / ideal;
  });
}

function dcg(order: readonly number[], gains: ArrayLike<number>, k: number): number {
  let total = 0;
  for (let i = 0; i < Math.min(k, order.length); i++) total += gains[order[i]!]! / Math.log2(i + 2);
  return total;
}
