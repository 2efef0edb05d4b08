/**
 * The manifest's fusion defaults: the weights and mode the worker fuses heads with when a
 * request names none (docs/artifacts.md "Fusion defaults").
 */
import { type FusionMode, MAX_FUSION_WEIGHT } from "../../shared/fusion.ts";
import type { HeadInfo, ModelManifest } from "../../shared/manifest.ts";
import { ExportError } from "./export-error.ts";

export interface FusionChoice {
  /** The whole weight map, like a request's `weights`: heads it does not name get 0. */
  weights?: Readonly<Record<string, number>>;
  mode?: FusionMode;
}

/**
 * What a directory's earlier manifest.json chose, kept by a later export that names no weights
 * (or no mode): a team sets `--fusion-weights` once, and re-exporting (int8, factorised) or a
 * pipeline run keeps it. Used only while the heads are the same.
 */
export function keptFusion(
  heads: readonly HeadInfo[],
  previous: ModelManifest["fusion"]["defaults"] | undefined,
  choice: FusionChoice = {},
): FusionChoice {
  if (!previous) return choice;
  const same =
    Object.keys(previous.weights).length === heads.length &&
    heads.every((h) => Object.hasOwn(previous.weights, h.name));
  return {
    ...(choice.weights ? { weights: choice.weights } : same ? { weights: previous.weights } : {}),
    mode: choice.mode ?? previous.mode,
  };
}

/**
 * Without a choice: 1 for every binary head, and 0 for a regression head beside a binary one. A
 * regression head outputs label units (seconds, euros), and in a sum a dwell of 30 s would
 * outweigh every probability, so the list would be ordered by dwell alone. A model with only
 * regression heads weighs each 1.
 */
export function fusionDefaults(
  heads: readonly HeadInfo[],
  choice: FusionChoice = {},
): ModelManifest["fusion"]["defaults"] {
  const mode = choice.mode ?? "sum";
  if (choice.weights) {
    const names = new Set(heads.map((h) => h.name));
    for (const name of Object.keys(choice.weights))
      if (!names.has(name))
        throw new ExportError(`fusion weights: no head named "${name}" (heads: ${[...names].join(", ")})`);
    for (const [name, w] of Object.entries(choice.weights))
      if (!(w >= 0 && w <= MAX_FUSION_WEIGHT))
        throw new ExportError(`fusion weights: ${name}=${w} is not a number in [0, ${MAX_FUSION_WEIGHT}]`);
    // In a sum every candidate would score 0 and keep its place; in a product every one 1.
    if (!heads.some((h) => (choice.weights?.[h.name] ?? 0) > 0))
      throw new ExportError(
        `fusion weights: every head weighs 0, so every candidate would score the same; give one a weight above 0 (heads: ${heads.map((h) => h.name).join(", ")})`,
      );
    return { weights: Object.fromEntries(heads.map((h) => [h.name, choice.weights?.[h.name] ?? 0])), mode };
  }
  const anyBinary = heads.some((h) => h.type === "binary");
  return {
    weights: Object.fromEntries(heads.map((h) => [h.name, h.type === "regression" && anyBinary ? 0 : 1])),
    mode,
  };
}
