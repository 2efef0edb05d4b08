/**
 * Calibration of binary probabilities: reliability-curve points, expected calibration error and
 * the predicted/observed ratio (mean probability / positive rate; 1 is calibrated on average).
 */

/**
 * "width": bins of equal width on [0, 1] (the usual ECE of Guo et al. 2017).
 * "mass": bins holding equal numbers of rows (by sorted probability; ties stay together), which
 * stays informative when probabilities crowd near 0, as they do for sparse tasks like purchase.
 */
export type Binning = "width" | "mass";

export interface CalibrationBin {
  /** Probability range of the bin: [lo, hi) ("width"), or the bin's smallest and largest probability ("mass"). */
  lo: number;
  hi: number;
  count: number;
  meanPredicted: number;
  observedRate: number;
}

export interface CalibrationOptions {
  bins?: number;
  binning?: Binning;
}

export const DEFAULT_CALIBRATION: Required<CalibrationOptions> = { bins: 10, binning: "width" };

/**
 * Reliability-curve points; empty bins are left out. `labels` are 0/1 outcomes, or true
 * probabilities (simulated data) to measure calibration against the truth instead of noisy labels.
 */
export function calibrationCurve(
  labels: ArrayLike<number>,
  probs: ArrayLike<number>,
  options: CalibrationOptions = {},
): CalibrationBin[] {
  const { bins, binning } = { ...DEFAULT_CALIBRATION, ...options };
  if (!Number.isInteger(bins) || bins < 1)
    throw new Error(`calibration bins: expected an integer >= 1, got ${bins}`);
  if (labels.length !== probs.length)
    throw new Error(`calibrationCurve: ${labels.length} labels but ${probs.length} probabilities`);
  const n = labels.length;
  const binOf = new Int32Array(n);
  if (binning === "width") {
    for (let i = 0; i < n; i++) binOf[i] = Math.min(bins - 1, Math.max(0, Math.floor(probs[i]! * bins)));
  } else {
    const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => probs[a]! - probs[b]!);
    // Tied probabilities share a bin (the one their first row falls in): splitting a tie would
    // give one prediction two observed rates, and a constant predictor a spurious error.
    order.forEach((row, rank) => {
      const prev = order[rank - 1];
      binOf[row] =
        prev !== undefined && probs[prev] === probs[row] ? binOf[prev]! : Math.floor((rank * bins) / n);
    });
  }
  const count = new Float64Array(bins);
  const sumP = new Float64Array(bins);
  const sumY = new Float64Array(bins);
  const lo = new Float64Array(bins).fill(Number.POSITIVE_INFINITY);
  const hi = new Float64Array(bins).fill(Number.NEGATIVE_INFINITY);
  for (let i = 0; i < n; i++) {
    const b = binOf[i]!;
    const p = probs[i]!;
    count[b]!++;
    sumP[b]! += p;
    sumY[b] = (sumY[b] ?? 0) + (labels[i] ?? 0);
    lo[b] = Math.min(lo[b]!, p);
    hi[b] = Math.max(hi[b]!, p);
  }
  const out: CalibrationBin[] = [];
  for (let b = 0; b < bins; b++) {
    if (count[b] === 0) continue;
    out.push({
      lo: binning === "width" ? b / bins : lo[b]!,
      hi: binning === "width" ? (b + 1) / bins : hi[b]!,
      count: count[b]!,
      meanPredicted: sumP[b]! / count[b]!,
      observedRate: sumY[b]! / count[b]!,
    });
  }
  return out;
}

/** Σ_bins (count / n) · |mean predicted − observed rate|; 0 is perfectly calibrated, NaN with no rows. */
export function expectedCalibrationError(bins: readonly CalibrationBin[]): number {
  let total = 0;
  let weighted = 0;
  for (const b of bins) {
    total += b.count;
    weighted += b.count * Math.abs(b.meanPredicted - b.observedRate);
  }
  return total > 0 ? weighted / total : Number.NaN;
}

/**
 * expectedCalibrationError over equal-width bins with a weight per row: Σ_bins |Σ w·(p − y)| / Σ w,
 * which is Σ (count / n) · |mean predicted − observed rate| when every weight is 1.
 */
export function weightedCalibrationError(
  labels: ArrayLike<number>,
  probs: ArrayLike<number>,
  weights: ArrayLike<number>,
  bins = DEFAULT_CALIBRATION.bins,
): number {
  const gap = new Float64Array(bins);
  let total = 0;
  for (let i = 0; i < labels.length; i++) {
    const w = weights[i]!;
    if (w === 0) continue;
    const p = probs[i]!;
    gap[Math.min(bins - 1, Math.max(0, Math.floor(p * bins)))]! += w * (p - labels[i]!);
    total += w;
  }
  let sum = 0;
  for (const g of gap) sum += Math.abs(g);
  return total > 0 ? sum / total : Number.NaN;
}

/** Mean probability / observed positive rate: > 1 over-predicts; NaN when no row is positive. */
export function predictedObservedRatio(labels: ArrayLike<number>, probs: ArrayLike<number>): number {
  let sumP = 0;
  let positives = 0;
  for (let i = 0; i < labels.length; i++) {
    sumP += probs[i]!;
    if (labels[i]! > 0.5) positives++;
  }
  return positives > 0 ? sumP / positives : Number.NaN;
}
