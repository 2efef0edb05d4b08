/** Checks the serving model's manifest.json (docs/artifacts.md) before anything trusts it. */
import * as v from "valibot";
import { encoderLayout } from "../../shared/encoder/state.ts";
import { MAX_FUSION_WEIGHT } from "../../shared/fusion.ts";
import type { FileInfo, ModelManifest, ServedManifest, TaskMetrics } from "../../shared/manifest.ts";
import { describeIssues, formatIssue, RESERVED_NAMES } from "../../shared/validation.ts";

/**
 * C0 and C1 controls and DEL. A manifest's names and labels reach response headers
 * (`x-model-version`), where CR, LF or NUL make the runtime throw on every answer, and log lines
 * and error messages; no exporter writes one.
 */
function hasControl(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) return true;
  }
  return false;
}
const Text = v.pipe(
  v.string(),
  v.check((s) => !hasControl(s), "must not contain control characters (CR, LF, NUL, tab, …)"),
);
const Name = v.pipe(Text, v.minLength(1));
/** The model's id and version: sent in a header and every request's log line, so kept short. */
const Label = v.pipe(Name, v.maxLength(256));
/** A head's or feature's name: a key of requests' `weights` and `features` objects. */
const KeyName = v.pipe(
  Name,
  v.check((name) => !RESERVED_NAMES.has(name), "a name requests cannot carry as a key"),
);
const Count = v.pipe(v.number(), v.integer(), v.minValue(0));
const Side = v.object({ dense: v.array(Count), ids: v.array(Count) });

/** The fields the worker reads; the rest of the manifest passes through unchecked. */
const ManifestSchema = v.looseObject({
  id: Label,
  version: Label,
  createdAt: Text,
  arch: Text,
  heads: v.pipe(
    v.array(v.looseObject({ name: KeyName, type: v.picklist(["binary", "regression"]), output: Name })),
    v.minLength(1),
  ),
  fusion: v.object({
    defaults: v.object({
      weights: v.record(
        v.string(),
        v.pipe(v.number(), v.finite(), v.minValue(0), v.maxValue(MAX_FUSION_WEIGHT)),
      ),
      mode: v.picklist(["sum", "product"]),
    }),
  }),
  inputs: v.object({ dense: v.optional(Name), ids: v.optional(Name) }),
  features: v.looseObject({
    // 2: a vector feature is scaled (shared/encoder/check-state.ts checks the rest at compile).
    version: v.picklist([1, 2]),
    features: v.array(
      v.looseObject({
        kind: v.picklist(["numeric", "categorical", "multi_categorical", "vector"]),
        name: KeyName,
      }),
    ),
    denseSize: Count,
    idSlots: Count,
    vocabSize: Count,
  }),
  metrics: v.optional(v.looseObject({})),
  files: v.optional(v.record(v.string(), v.unknown())),
  factorised: v.optional(
    v.looseObject({
      file: Name,
      int8File: v.optional(Name),
      inputs: v.object({
        userDense: v.optional(Name),
        userIds: v.optional(Name),
        itemDense: v.optional(Name),
        itemIds: v.optional(Name),
      }),
      user: Side,
      item: Side,
    }),
  ),
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
  if (manifest.factorised) checkFactorised(manifest);
  return manifest;
}

/** Every column a factorised side reads must exist in the plain batch, and every non-empty side needs its input. */
function checkFactorised(manifest: ModelManifest): void {
  const { user, item, inputs } = manifest.factorised!;
  const { denseSize, idSlots } = manifest.features;
  const sides = { user, item } as const;
  for (const [sideName, side] of Object.entries(sides)) {
    for (const [kind, list, limit] of [
      ["dense", side.dense, denseSize],
      ["ids", side.ids, idSlots],
    ] as const) {
      const bad = list.findIndex((c) => c >= limit);
      if (bad >= 0)
        throw new ManifestError(
          `invalid manifest: factorised.${sideName}.${kind}.${bad} is ${list[bad]}, outside the ${limit} ${kind === "dense" ? "dense columns" : "id slots"}`,
        );
      const input = `${sideName}${kind === "dense" ? "Dense" : "Ids"}` as keyof typeof inputs;
      if (list.length > 0 && !inputs[input])
        throw new ManifestError(`invalid manifest: factorised.inputs.${input} is missing`);
    }
  }
}

/**
 * What the worker keeps of a checked manifest, for as long as the model serves: the fields it
 * reads or serves, less each id feature's vocabulary, training counts and target rates, which the
 * compiled encoder holds in its own compact form (a copy; `m` is left as it is). Fields nobody
 * checks are not kept: a manifest's unknown keys (a padding of megabytes) would stay in memory
 * with the model, and GET /v1/models serves `metrics` and `files`, so those are kept only as the
 * flat numbers and file entries the exporter writes.
 */
export function servedManifest(m: ModelManifest): ServedManifest {
  const factorised = m.factorised && {
    file: m.factorised.file,
    ...(m.factorised.int8File === undefined ? {} : { int8File: m.factorised.int8File }),
    inputs: m.factorised.inputs,
    user: m.factorised.user,
    item: m.factorised.item,
  };
  return {
    id: m.id,
    version: m.version,
    createdAt: m.createdAt,
    arch: m.arch,
    heads: m.heads.map(({ name, type, output, transform }) => ({
      name,
      type,
      output,
      ...(transform === "none" || transform === "log1p" ? { transform } : {}),
    })),
    fusion: m.fusion,
    inputs: m.inputs,
    features: encoderLayout(m.features),
    metrics: servedMetrics(m.metrics),
    files: servedFiles(m.files),
    ...(factorised ? { factorised } : {}),
  };
}

const isRecord = (x: unknown): x is Record<string, unknown> =>
  typeof x === "object" && x !== null && !Array.isArray(x);
/** Keys longer than any task, metric or file name are dropped with their value. */
const MAX_KEY = 256;
const SHA256_HEX = /^[0-9a-fA-F]{64}$/;

/**
 * `metrics.validation.<task>.<metric>`: numbers (or null, for a metric undefined on the data).
 * Built with Object.fromEntries, so a key such as `__proto__` stays an own key.
 */
function servedMetrics(metrics: unknown): ServedManifest["metrics"] {
  const given = isRecord(metrics) && isRecord(metrics.validation) ? metrics.validation : {};
  const tasks: [string, TaskMetrics][] = [];
  for (const [task, values] of Object.entries(given)) {
    if (task.length > MAX_KEY || !isRecord(values)) continue;
    const kept = Object.entries(values).filter(
      ([name, x]) => name.length <= MAX_KEY && (typeof x === "number" || x === null),
    );
    tasks.push([task, Object.fromEntries(kept) as unknown as TaskMetrics]);
  }
  return { validation: Object.fromEntries(tasks) };
}

/** `files.<name>`: its sha256 and byte count. */
function servedFiles(files: unknown): ServedManifest["files"] {
  const kept: [string, FileInfo][] = [];
  for (const [name, entry] of Object.entries(isRecord(files) ? files : {}))
    if (
      name.length <= MAX_KEY &&
      isRecord(entry) &&
      typeof entry.sha256 === "string" &&
      SHA256_HEX.test(entry.sha256) &&
      typeof entry.bytes === "number" &&
      Number.isInteger(entry.bytes)
    )
      kept.push([name, { sha256: entry.sha256, bytes: entry.bytes }]);
  return Object.fromEntries(kept);
}

/** What GET /v1/models shows of a model. */
export function manifestSummary(m: ServedManifest) {
  return {
    id: m.id,
    version: m.version,
    arch: m.arch,
    heads: m.heads.map((h) => ({ name: h.name, type: h.type })),
    createdAt: m.createdAt,
    metrics: m.metrics,
    files: m.files,
  };
}
