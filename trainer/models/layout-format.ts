/**
 * The format of a trained model's training/network.json ("mtrank-trained/<n>",
 * ../artifact/trained-model.ts): which weight layouts a file of each version may hold.
 *
 *   1  may hold two layouts besides the current ones, which the readers recognise by content:
 *      - esmm whose tasks share a bottom MLP: shared-bottom's weights (`bottom/...`,
 *        `tower_<task>/...`) under the esmm product (./esmm.ts);
 *      - regression heads without `scale`, whose output is the label itself rather than the
 *        standardised label (./types.ts HeadSpec.scale).
 *   2  holds neither: esmm has one network per task (`net_<task>/...`) and every regression head
 *      has a scale.
 *
 * A model is saved in the newest format its layouts fit, so a format-1 model stays format 1 when
 * it is re-saved (pruned, or warm-started keeping an unscaled head as it was trained).
 * No imports: the artifact code reads this without loading TensorFlow.js.
 */

export type TrainedFormat = 1 | 2;

export const TRAINED_FORMAT: TrainedFormat = 2;

const TAG = "mtrank-trained/";

export function formatTag(format: TrainedFormat): string {
  return `${TAG}${format}`;
}

/** The version a network.json's `format` names, or undefined for anything else. */
export function parseFormatTag(tag: unknown): TrainedFormat | undefined {
  if (tag === formatTag(1)) return 1;
  if (tag === formatTag(2)) return 2;
  return undefined;
}

/** esmm weights in format 1's shared-bottom layout (the tasks share shared-bottom's bottom MLP). */
export function esmmSharesBottom(weights: Readonly<Record<string, unknown>>): boolean {
  return "bottom/0/kernel" in weights;
}

/** What the format depends on: the architecture, the heads, and the weights' names. */
export interface LayoutSource {
  config: { arch: string; heads: readonly { type: string; scale?: object | undefined }[] };
  weights: Readonly<Record<string, unknown>>;
}

/** The newest format whose layouts `model` fits. */
export function layoutFormat(model: LayoutSource): TrainedFormat {
  if (model.config.arch === "esmm" && esmmSharesBottom(model.weights)) return 1;
  if (model.config.heads.some((h) => h.type === "regression" && !h.scale)) return 1;
  return TRAINED_FORMAT;
}
