/**
 * Learning-rate schedules, as a function of the optimiser step.
 *
 * "cosine" (the default) warms up linearly from 10% of the peak over the first steps, then
 * follows a cosine down to 5% of the peak at the last planned step (epochs × steps per epoch;
 * early stopping may end sooner). Warm-up keeps Adam's first, noisy steps from wrecking fresh
 * embeddings; the decay lets the last epochs settle instead of bouncing around a minimum, which
 * is what a fixed rate does on large data. "constant" keeps the peak throughout.
 */
export type ScheduleKind = "cosine" | "constant";

export const SCHEDULES: readonly ScheduleKind[] = ["cosine", "constant"];

export interface ScheduleOptions {
  kind: ScheduleKind;
  peak: number;
  totalSteps: number;
  /** Default: 5% of the steps, at most 1,000. */
  warmupSteps?: number;
}

const WARMUP_START = 0.1;
const FLOOR = 0.05;

export function learningRateSchedule(options: ScheduleOptions): (step: number) => number {
  const { kind, peak } = options;
  if (!(peak > 0) || !Number.isFinite(peak)) throw new RangeError(`learning rate must be > 0, got ${peak}`);
  if (kind === "constant") return () => peak;
  const total = Math.max(1, options.totalSteps);
  const warmup = Math.min(options.warmupSteps ?? Math.min(1000, Math.round(total * 0.05)), total - 1);
  return (step) => {
    if (step < warmup) return peak * (WARMUP_START + ((1 - WARMUP_START) * step) / warmup);
    const progress = Math.min(1, (step - warmup) / Math.max(1, total - warmup));
    return peak * (FLOOR + (1 - FLOOR) * 0.5 * (1 + Math.cos(Math.PI * progress)));
  };
}
