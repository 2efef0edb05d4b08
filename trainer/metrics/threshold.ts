/** Classification metrics of binary probabilities cut at a threshold. */

export interface ThresholdMetrics {
  threshold: number;
  accuracy: number;
  /** NaN when nothing is predicted positive (undefined, not 0: nothing was claimed). */
  precision: number;
  /** NaN when the labels hold no positive. */
  recall: number;
  /** Harmonic mean of precision and recall; 0 when both are 0, NaN when either is undefined. */
  f1: number;
  confusion: { tp: number; fp: number; tn: number; fn: number };
}

/** A row is predicted positive when its probability is >= threshold (labels > 0.5 are positive). */
export function thresholdMetrics(
  labels: ArrayLike<number>,
  probs: ArrayLike<number>,
  threshold = 0.5,
): ThresholdMetrics {
  if (labels.length !== probs.length)
    throw new Error(`thresholdMetrics: ${labels.length} labels but ${probs.length} probabilities`);
  let tp = 0;
  let fp = 0;
  let tn = 0;
  let fn = 0;
  for (let i = 0; i < labels.length; i++) {
    const positive = labels[i]! > 0.5;
    if (probs[i]! >= threshold) {
      if (positive) tp++;
      else fp++;
    } else if (positive) fn++;
    else tn++;
  }
  const precision = tp + fp > 0 ? tp / (tp + fp) : Number.NaN;
  const recall = tp + fn > 0 ? tp / (tp + fn) : Number.NaN;
  const f1 = precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : precision + recall;
  return {
    threshold,
    accuracy: labels.length > 0 ? (tp + tn) / labels.length : Number.NaN,
    precision,
    recall,
    f1,
    confusion: { tp, fp, tn, fn },
  };
}
