/** The dataset spec (docs/dataset-spec.md): how a CSV/JSONL log maps to features and tasks. */
import * as v from "valibot";
import { describeIssues, formatIssue, RESERVED_NAMES } from "./validation.ts";

const Side = v.picklist(["user", "context", "item"]);
const Name = v.pipe(v.string(), v.minLength(1));

const NumericFeature = v.strictObject({
  name: Name,
  type: v.literal("numeric"),
  side: v.optional(Side),
  /** Quantile buckets embedded beside the standardised value (default 16; 0 turns them off). */
  buckets: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(1024))),
});
const CategoricalFeature = v.strictObject({
  name: Name,
  type: v.literal("categorical"),
  side: v.optional(Side),
  /** Values seen fewer times than this in training go to the out-of-vocabulary bucket. */
  minCount: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1))),
  /** Hash values into this many buckets instead of building a vocabulary. */
  hashBuckets: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1))),
  /**
   * A dense column with the standardised log(1 + training count) of the row's value, or of its
   * hash bucket (default: on for id-like features, over ID_FEATURE_ROWS embedding rows, hashed
   * ones up to BUCKET_COLUMNS_MAX_BUCKETS buckets).
   */
  frequency: v.optional(v.boolean()),
  /**
   * Dense columns with the training positive rate of each binary task among the rows that had
   * the row's value (or its hash bucket), shrunk towards the task's rate (default: as
   * `frequency`).
   */
  targetEncoding: v.optional(v.boolean()),
});
const Separator = v.pipe(v.string(), v.minLength(1));
/** A bag of categories per row (JSON array, or a string split by `separator`, default "|"). */
const MultiCategoricalFeature = v.strictObject({
  name: Name,
  type: v.literal("multi_categorical"),
  side: v.optional(Side),
  separator: v.optional(Separator),
  minCount: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1))),
  hashBuckets: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1))),
  /** Values kept per row (extra ones are dropped and counted); default: the most seen in training, capped. */
  maxValues: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(256))),
});
/** `dim` numbers per row (JSON array, or a string split by `separator`, default " "). */
const VectorFeature = v.strictObject({
  name: Name,
  type: v.literal("vector"),
  side: v.optional(Side),
  dim: v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(4096)),
  separator: v.optional(Separator),
  /**
   * "standard" (default): each element standardised by its training mean and std, clipped like
   * a numeric feature; "none": the numbers as given (an embedding whose scale already suits).
   */
  scaling: v.optional(v.picklist(["standard", "none"])),
});
const Feature = v.variant("type", [
  NumericFeature,
  CategoricalFeature,
  MultiCategoricalFeature,
  VectorFeature,
]);

/**
 * What a row without this task's label means: "error" (default) stops the load (or spends the
 * error budget); "mask" keeps the row for the other tasks and leaves it out of this task's loss
 * and metrics (dwell time that only clicked rows have, a conversion not yet known).
 */
const MissingLabel = v.optional(v.picklist(["error", "mask"]));

const BinaryTask = v.strictObject({
  name: Name,
  type: v.literal("binary"),
  column: Name,
  positive: v.optional(v.array(v.string())),
  given: v.optional(Name),
  weight: v.optional(v.pipe(v.number(), v.minValue(0))),
  missingLabel: MissingLabel,
});
const RegressionTask = v.strictObject({
  name: Name,
  type: v.literal("regression"),
  column: Name,
  transform: v.optional(v.picklist(["none", "log1p"])),
  /** Training loss: squared error (default) or Huber, quadratic within `delta` of the label. */
  loss: v.optional(v.picklist(["mse", "huber"])),
  /** Huber's threshold in (transformed) label units; default 1. */
  delta: v.optional(v.pipe(v.number(), v.gtValue(0))),
  weight: v.optional(v.pipe(v.number(), v.minValue(0))),
  missingLabel: MissingLabel,
});
const Task = v.variant("type", [BinaryTask, RegressionTask]);

const DatasetSpecSchema = v.strictObject({
  format: v.picklist(["csv", "jsonl"]),
  delimiter: v.optional(v.pipe(v.string(), v.length(1))),
  header: v.optional(v.boolean()),
  columns: v.optional(v.array(Name)),
  trim: v.optional(v.boolean()),
  missing: v.optional(v.array(v.string())),
  group: v.optional(Name),
  features: v.pipe(v.array(Feature), v.minLength(1)),
  tasks: v.pipe(v.array(Task), v.minLength(1)),
  /** Simulated data only: task name -> column holding the true probability (oracle). */
  truth: v.optional(v.record(v.string(), v.string())),
});

export type FeatureSide = v.InferOutput<typeof Side>;
export type FeatureSpec = v.InferOutput<typeof Feature>;
export type TaskSpec = v.InferOutput<typeof Task>;
export type DatasetSpecInput = v.InferInput<typeof DatasetSpecSchema>;

/** A spec with defaults filled in; every consumer reads this form. */
export interface DatasetSpec extends Omit<v.InferOutput<typeof DatasetSpecSchema>, "features"> {
  delimiter: string;
  header: boolean;
  trim: boolean;
  missing: string[];
  features: (FeatureSpec & { side: FeatureSide })[];
}

/**
 * Separators when the spec names none: "|" between categories and " " between numbers, as
 * neither clashes with the CSV delimiter "," (a separator equal to the delimiter is an error).
 */
export function defaultSeparator(type: "multi_categorical" | "vector"): string {
  return type === "multi_categorical" ? "|" : " ";
}

export class SpecError extends Error {
  override name = "SpecError";
}

/** Validates a parsed JSON value as a dataset spec; throws SpecError naming the offending key. */
export function parseSpec(json: unknown): DatasetSpec {
  const result = v.safeParse(DatasetSpecSchema, json);
  if (!result.success) {
    const first = describeIssues(result.issues)[0];
    throw new SpecError(`dataset spec: ${first ? formatIssue(first) : "invalid"}`);
  }
  const spec = result.output;
  checkNames(spec);
  return {
    ...spec,
    delimiter: spec.delimiter ?? ",",
    header: spec.header ?? true,
    trim: spec.trim ?? true,
    missing: spec.missing ?? ["", "?", "NA"],
    features: spec.features.map((f) => ({ ...f, side: f.side ?? "item" })),
  };
}

function reservedName(where: string, name: string): void {
  if (RESERVED_NAMES.has(name))
    throw new SpecError(
      `dataset spec: ${where}: "${name}" is reserved (the worker's requests cannot carry a key of that name); rename it in the logs and the spec`,
    );
}

/**
 * A `given` chain names binary tasks only and ends: p(task) = p(given) · p(task | given) needs a
 * probability to condition on, and a task conditioned on itself, directly or round a loop, has
 * no first event to start from.
 */
function checkGiven(name: string, tasks: ReadonlyMap<string, DatasetSpec["tasks"][number]>): void {
  const chain = [name];
  for (let task = tasks.get(name); task?.type === "binary" && task.given !== undefined; ) {
    const given = tasks.get(task.given);
    const where = `dataset spec: tasks.${task.name}.given`;
    if (!given) throw new SpecError(`${where}: no task named "${task.given}"`);
    if (given.type !== "binary")
      throw new SpecError(
        `${where}: "${given.name}" is a regression task; given names the binary task this one follows`,
      );
    if (chain.includes(given.name))
      throw new SpecError(
        given.name === task.name
          ? `${where}: a task cannot be given itself`
          : `${where}: given forms a loop (${[...chain, given.name].join(" → ")})`,
      );
    chain.push(given.name);
    task = given;
  }
}

function checkNames(spec: v.InferOutput<typeof DatasetSpecSchema>): void {
  const seen = new Set<string>();
  for (const f of spec.features) {
    reservedName("features", f.name);
    if (seen.has(f.name)) throw new SpecError(`dataset spec: features: duplicate feature "${f.name}"`);
    seen.add(f.name);
  }
  const tasks = new Map<string, (typeof spec.tasks)[number]>();
  for (const t of spec.tasks) {
    reservedName("tasks", t.name);
    if (tasks.has(t.name)) throw new SpecError(`dataset spec: tasks: duplicate task "${t.name}"`);
    if (seen.has(t.column)) {
      throw new SpecError(`dataset spec: tasks.${t.name}.column: "${t.column}" is also listed as a feature`);
    }
    tasks.set(t.name, t);
  }
  for (const t of spec.tasks) if (t.type === "binary") checkGiven(t.name, tasks);
  for (const f of spec.features) {
    if ((f.type === "multi_categorical" || f.type === "vector") && spec.format === "csv") {
      // A separator equal to the CSV delimiter would split the cell before the feature sees it.
      const separator = f.separator ?? defaultSeparator(f.type);
      if (separator === (spec.delimiter ?? ","))
        throw new SpecError(
          `dataset spec: features.${f.name}.separator: "${separator}" is the CSV delimiter; pick another`,
        );
    }
  }
  if (spec.header === false && !spec.columns) {
    throw new SpecError('dataset spec: columns: required when "header" is false');
  }
  // With a header row the header names the columns: a list beside it would be silently ignored.
  if (spec.header !== false && spec.columns)
    throw new SpecError(
      'dataset spec: columns: names the columns of a CSV without a header row; add "header": false, or leave columns out',
    );
}
