/**
 * Regression targets standardised for training. A label in its own units (dwell in seconds,
 * spend in cents) has a squared error thousands of times a binary head's cross-entropy: it would
 * drive every shared layer and leave the other tasks untrained, and its own output would start
 * far from the labels. Measured on the simulator (mmoe, seed 42, dwell in seconds as a third
 * task): purchase test AUC 0.6807 without dwell, 0.6523 with it unscaled.
 */
import type { HeadSpec, TargetScale } from "../models/types.ts";

/** Mean and standard deviation of the labelled (not NaN) values; std 1 for a constant label. */
export function targetScale(labels: ArrayLike<number>): TargetScale {
  let n = 0;
  let sum = 0;
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i]!;
    if (Number.isNaN(y)) continue;
    n++;
    sum += y;
  }
  const mean = n > 0 ? sum / n : 0;
  let squares = 0;
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i]!;
    if (!Number.isNaN(y)) squares += (y - mean) ** 2;
  }
  const std = n > 1 ? Math.sqrt(squares / n) : 0;
  return { mean, std: std > 1e-9 * Math.max(1, Math.abs(mean)) ? std : 1 };
}

/**
 * The heads with each regression head's scale: from the training labels, or the earlier model's
 * for a head a warm start carries over (its weights were trained to that scale).
 */
export function scaleHeads<H extends HeadSpec>(
  heads: readonly H[],
  labels: Readonly<Record<string, ArrayLike<number>>>,
  previous: readonly HeadSpec[] = [],
): H[] {
  return heads.map((h): H => {
    if (h.type !== "regression") return h;
    const before = previous.find((p) => p.name === h.name && p.type === "regression");
    const { scale: _drop, ...rest } = h;
    const scale = before ? before.scale : targetScale(labels[h.name]!);
    return (scale ? { ...rest, scale } : rest) as H;
  });
}
