/**
 * Hidden layer widths follow the file's size when the run names none. The defaults
 * (DEFAULT_ARCH_OPTIONS) suit tens of thousands of rows; on a few thousand, where the signal is
 * weak and close to linear, the same layers fit the training rows' noise. Under two rounds of
 * five-fold cross-validation over all 4,406 NMES1988 patients (one seed per fold, the default
 * mmoe), a quarter of the widths ranked emergency visits 0.0044 higher (±0.0014) and hospital
 * stays 0.0013 higher (±0.0010) than the defaults, and half of them 0.0031 / 0.0007 higher.
 */
import { type ArchOptions, DEFAULT_ARCH_OPTIONS } from "../models/types.ts";

/** Training rows from which the default widths apply whole. */
export const FULL_WIDTH_ROWS = 20_000;
/** The narrowest share of the default widths, reached at a quarter of FULL_WIDTH_ROWS. */
const LEAST_SHARE = 0.25;
/** The widths a file's size scales: every hidden layer's. */
const WIDTH_FIELDS = ["bottom", "tower", "expertSizes"] as const;

/**
 * The architecture options a run trains with: those given, then an earlier model's widths (a
 * warm start keeps its shapes, so its weights carry over), then the defaults, their widths scaled
 * by min(1, rows / FULL_WIDTH_ROWS) but not under LEAST_SHARE, in multiples of 4 (the wasm
 * kernels' fast path).
 */
export function layerWidths(
  given: Partial<ArchOptions>,
  trainRows: number,
  previous?: Partial<ArchOptions>,
): ArchOptions {
  const share = Math.max(LEAST_SHARE, Math.min(1, trainRows / FULL_WIDTH_ROWS));
  const scaled = (sizes: readonly number[]) => sizes.map((w) => Math.max(4, Math.round((w * share) / 4) * 4));
  const widths: Partial<ArchOptions> = {};
  for (const field of WIDTH_FIELDS)
    widths[field] = given[field] ?? previous?.[field] ?? scaled(DEFAULT_ARCH_OPTIONS[field]);
  return { ...DEFAULT_ARCH_OPTIONS, ...given, ...widths };
}
