/**
 * A run whose loss stops being finite. The training loop (./train-network.ts) stops at the first
 * such step: every later step only spreads NaN through the weights, and the export would then
 * refuse them without saying why. The error names the step, the tasks whose loss went, and the
 * likely cause, looked for in the training data only once the run has diverged (a healthy run
 * pays one Number.isFinite a step for all of this).
 */
import { encodedColumns, type FeatureState } from "../../shared/encoder/state.ts";
import type { HeadSpec } from "../models/types.ts";
import type { LabelledBatch, StepLoss } from "./batch.ts";
import { DEFAULT_LEARNING_RATES, type OptimizerKind } from "./dense-optimizer.ts";

/**
 * The magnitude past which an input column or a standardised label is named as the likely cause.
 * What the encoder writes itself stays far below it: standardised numbers are clipped to ±8,
 * frequency and target columns are standardised, bag weights are shares, and so are vectors
 * unless their spec says `"scaling": "none"`: those reach the network as given, where embeddings,
 * shares and even raw counts or prices sit well under 1e6.
 * Beyond it, training is already broken before it turns NaN: on 400 rows with a click and a
 * regression head, vector elements of 1e5 gave a training loss of 1.8e16, and 1e12 a NaN at once.
 */
export const LARGE_MAGNITUDE = 1e6;

/** A diverged run: where (`where`), which losses (`what`), and the likely cause (`why`). */
export class DivergenceError extends Error {
  override name = "DivergenceError";
  constructor(
    readonly where: string,
    readonly what: string,
    readonly why: string,
  ) {
    super(`training diverged ${where}: ${what}; likely cause: ${why}`);
  }

  /** The same divergence, placed within a larger run (one fold network of several). */
  within(context: string): DivergenceError {
    return new DivergenceError(`${context} ${this.where}`, this.what, this.why);
  }
}

/** What the likely cause is looked for in: the training data, the heads and the run's settings. */
export interface DivergenceContext {
  data: LabelledBatch;
  heads: readonly HeadSpec[];
  learningRate: number;
  /** The dense parameters' optimiser (default "adam"), whose default rate a lower one may be. */
  optimizer?: OptimizerKind | undefined;
  /** The encoder's features, to name the feature behind a dense column (else its index). */
  inputs?: readonly FeatureState[] | undefined;
}

/** The error for a step whose total loss is not finite, with the per-task losses it reported. */
export function stepDivergence(
  at: { epoch: number; step: number; steps: number },
  loss: StepLoss,
  context: DivergenceContext,
): DivergenceError {
  return new DivergenceError(
    `at epoch ${at.epoch}, step ${at.step} of ${at.steps}`,
    lossDescription(loss, context.heads),
    likelyCause(context),
  );
}

/** Which losses are not finite: the tasks' own, or only their weighted total. */
export function lossDescription(loss: StepLoss, heads: readonly HeadSpec[]): string {
  const bad = heads.flatMap((h, i) => {
    const x = loss.tasks[i];
    return x === undefined || Number.isFinite(x) ? [] : [{ name: h.name, value: x }];
  });
  if (bad.length === 1) return `the loss of task "${bad[0]!.name}" is ${bad[0]!.value}`;
  if (bad.length > 1)
    return `the losses of tasks ${bad.map((b) => `"${b.name}" (${b.value})`).join(", ")} are not finite`;
  // Every task's own loss finite: the ranking term, the L2 penalty or the learned task weights.
  return `the total loss is ${loss.total} while each task's own loss is finite`;
}

/**
 * The likely cause, by a scan of the training data: an input column of very large magnitude;
 * else a regression label far outside the scale its head is trained in; else the learning rate.
 */
export function likelyCause(context: DivergenceContext): string {
  const input = largestInput(context.data, context.inputs);
  if (input && input.magnitude > LARGE_MAGNITUDE) {
    const size = magnitude(input.magnitude);
    if (input.feature?.kind === "vector")
      return `vector feature "${input.feature.name}" has elements up to ${size} in magnitude, which reach the network as given ("scaling": "none"): drop that field from its spec so they are standardised, or scale them before training`;
    const what = input.feature
      ? `${input.feature.kind} feature "${input.feature.name}"`
      : `dense input column ${input.column}`;
    return `${what} reaches the network with values up to ${size} in magnitude: scale it before training`;
  }
  const label = largestLabel(context.data, context.heads);
  if (label && label.standardised > LARGE_MAGNITUDE)
    return `regression label "${label.head}" reaches ${magnitude(label.value)}, ${magnitude(label.standardised)} in the standardised units its loss compares (mean ${magnitude(label.mean)}, std ${magnitude(label.std)}): rescale it ("transform": "log1p", or other units)`;
  const optimizer = context.optimizer ?? "adam";
  const usual = DEFAULT_LEARNING_RATES[optimizer];
  const lower =
    context.learningRate > usual
      ? `${usual}, ${optimizer}'s default`
      : String(Number((context.learningRate / 10).toPrecision(3)));
  return `the learning rate is too high for this data (--learning-rate ${context.learningRate}): try a lower one, e.g. ${lower}`;
}

/**
 * The dense column with the largest |value| over every training row (non-finite: Infinity), and
 * the feature that writes it. One pass over the encoded data, run only after a divergence.
 */
function largestInput(
  data: LabelledBatch,
  inputs: readonly FeatureState[] | undefined,
): { column: number; magnitude: number; feature?: FeatureState } | undefined {
  if (data.rows === 0 || data.dense.length === 0) return undefined;
  const width = data.dense.length / data.rows;
  const largest = new Float64Array(width);
  for (let i = 0; i < data.dense.length; i++) {
    const x = data.dense[i]!;
    const m = Number.isFinite(x) ? Math.abs(x) : Number.POSITIVE_INFINITY;
    const c = i % width;
    if (m > largest[c]!) largest[c] = m;
  }
  let column = 0;
  for (let c = 1; c < width; c++) if (largest[c]! > largest[column]!) column = c;
  const feature = inputs?.find((f) => encodedColumns(f).dense.includes(column));
  return { column, magnitude: largest[column]!, ...(feature ? { feature } : {}) };
}

/**
 * The regression label farthest from its head's scale, as the loss sees it: (y − mean) / std in
 * float32 (the loss's arithmetic, so a difference past float32's range reads Infinity). A head's
 * own training labels stay within √rows standard deviations of their mean, so this finds a scale
 * that does not fit the data (one an earlier model's warm start carried over, or a head without one).
 */
function largestLabel(
  data: LabelledBatch,
  heads: readonly HeadSpec[],
): { head: string; value: number; standardised: number; mean: number; std: number } | undefined {
  let found: ReturnType<typeof largestLabel>;
  for (const h of heads) {
    if (h.type !== "regression") continue;
    const labels = data.labels[h.name];
    if (!labels) continue;
    const mean = Math.fround(h.scale?.mean ?? 0);
    const std = h.scale?.std ?? 1;
    for (let r = 0; r < labels.length; r++) {
      const y = labels[r]!;
      if (Number.isNaN(y)) continue; // a masked label
      const z = Math.abs(Math.fround(y - mean) / std);
      const standardised = Number.isFinite(z) ? z : Number.POSITIVE_INFINITY;
      if (!found || standardised > found.standardised)
        found = { head: h.name, value: y, standardised, mean, std };
    }
  }
  return found;
}

function magnitude(x: number): string {
  return Number.isFinite(x) ? x.toPrecision(3) : String(x);
}
