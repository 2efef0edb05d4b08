/** Checks the serving model's manifest.json (DESIGN.md "Artifact layout") before anything trusts it. */
import * as v from "valibot";
import type { ModelManifest } from "../../shared/manifest.ts";
import { describeIssues, formatIssue } from "../../shared/validation.ts";

const Name = v.pipe(v.string(), v.minLength(1));
const Count = v.pipe(v.number(), v.integer(), v.minValue(0));

/** The fields the worker reads; the rest of the manifest passes through unchecked. */
const ManifestSchema = v.looseObject({
  id: Name,
  version: Name,
  createdAt: v.string(),
  arch: v.string(),
  heads: v.pipe(
    v.array(v.looseObject({ name: Name, type: v.picklist(["binary", "regression"]), output: Name })),
    v.minLength(1),
  ),
  fusion: v.object({
    defaults: v.object({
      weights: v.record(v.string(), v.pipe(v.number(), v.finite(), v.minValue(0))),
      mode: v.picklist(["sum", "product"]),
    }),
  }),
  inputs: v.object({ dense: v.optional(Name), ids: v.optional(Name) }),
  features: v.looseObject({
    version: v.literal(1),
    features: v.array(v.looseObject({ kind: v.picklist(["numeric", "categorical"]), name: Name })),
    denseSize: Count,
    idSlots: Count,
    vocabSize: Count,
  }),
  metrics: v.optional(v.looseObject({})),
  files: v.optional(v.record(v.string(), v.unknown())),
});

export class ManifestError extends Error {
  override name = "ManifestError";
}

/** Returns the manifest typed, or throws a ManifestError naming the offending fields. */
export function parseManifest(raw: unknown): ModelManifest {
  const result = v.safeParse(ManifestSchema, raw);
  if (!result.success)
    throw new ManifestError(`invalid manifest: ${describeIssues(result.issues).map(formatIssue).join("; ")}`);
  const manifest = result.output as unknown as ModelManifest;
  const heads = new Set(manifest.heads.map((h) => h.name));
  for (const name of Object.keys(manifest.fusion.defaults.weights))
    if (!heads.has(name))
      throw new ManifestError(`invalid manifest: fusion.defaults.weights.${name} is not a head`);
  return manifest;
}

/** What GET /v1/models shows of a model. */
export function manifestSummary(m: ModelManifest) {
  return {
    id: m.id,
    version: m.version,
    arch: m.arch,
    heads: m.heads.map((h) => ({ name: h.name, type: h.type })),
    createdAt: m.createdAt,
    metrics: m.metrics ?? {},
    files: m.files ?? {},
  };
}
