/** The POST /v1/rerank body (docs/http-api.md), checked with valibot. */
import * as v from "valibot";
import { MAX_FUSION_WEIGHT } from "../../shared/fusion.ts";
import { MAX_GRAPH_ROWS } from "../../shared/onnx-ops.ts";
import { candidatesAreValid } from "./candidate-check.ts";

/** Candidates per request: the rows the graph check bounds every tensor at (shared/onnx-ops.ts). */
export const MAX_CANDIDATES = MAX_GRAPH_ROWS;
/** Most values in one bag or vector feature. */
export const MAX_LIST = 4096;
/** Most values in one in / not_in filter list (a feed's "already seen" ids), far above a real one. */
export const MAX_FILTER_LIST = 10_000;

/** Unknown keys are errors, so a typo ("topk") is reported instead of silently ignored. */
function objectMessage(issue: v.StrictObjectIssue): string {
  if (issue.expected === "never") return "unknown field";
  if (issue.received === "undefined") return "required";
  return `expected an object, received ${issue.received}`;
}

const FeatureValue = v.union(
  [v.string(), v.pipe(v.number(), v.finite()), v.boolean(), v.null()],
  "expected a string, a finite number, a boolean or null",
);
/** A feature is one value, or a list of them (bag and vector features). */
const Features = v.record(
  v.string(),
  v.union(
    [FeatureValue, v.pipe(v.array(FeatureValue), v.maxLength(MAX_LIST))],
    "expected a string, a finite number, a boolean, null, or a list of them",
  ),
);

const Candidate = v.strictObject(
  { id: v.pipe(v.string(), v.minLength(1, "expected a non-empty string")), features: v.optional(Features) },
  objectMessage,
);

const Comparison = v.picklist(
  ["eq", "ne", "in", "not_in", "lt", "lte", "gt", "gte"],
  "expected one of eq, ne, in, not_in, lt, lte, gt, gte",
);

/** { field, op, value }: in/not_in take a list, lt/lte/gt/gte a number, eq/ne any feature value. */
const Filter = v.pipe(
  v.strictObject(
    {
      field: v.pipe(v.string(), v.minLength(1, "expected a feature name")),
      op: Comparison,
      value: v.union(
        [
          FeatureValue,
          v.pipe(
            v.array(FeatureValue),
            v.maxLength(MAX_FILTER_LIST, `at most ${MAX_FILTER_LIST} values in a filter's list`),
          ),
        ],
        "expected a feature value or a list of them",
      ),
    },
    objectMessage,
  ),
  v.check(
    (f) => (f.op === "in" || f.op === "not_in") === Array.isArray(f.value),
    "in and not_in take a list; other operators a single value",
  ),
  v.check(
    (f) => !["lt", "lte", "gt", "gte"].includes(f.op) || typeof f.value === "number",
    "lt, lte, gt and gte take a number",
  ),
);

const Pin = v.strictObject(
  {
    id: v.pipe(v.string(), v.minLength(1, "expected a non-empty string")),
    position: v.pipe(
      v.number(),
      v.integer("expected an integer >= 0"),
      v.minValue(0, "expected an integer >= 0"),
    ),
  },
  objectMessage,
);

/** Bounded so that every fused score is a finite number (shared/fusion.ts). */
const Weight = v.pipe(
  v.number(),
  v.finite("expected a finite number"),
  v.minValue(0, "expected a number >= 0"),
  v.maxValue(MAX_FUSION_WEIGHT, `expected a number <= ${MAX_FUSION_WEIGHT}`),
);

/**
 * Builds the request schema for a model with these heads (a weight for another name is an error).
 * With no heads (the model is unusable) any weight name passes and the request falls back.
 */
export function rerankRequestSchema(heads: readonly string[]) {
  return requestSchema(heads, Candidate);
}

/**
 * A body with more JSON values than this is checked up to its first issue only. Every wrong
 * value is an issue of its own, so listing them all would let 4 MiB of `1,1,1,...` cost seconds
 * of CPU, hundreds of MB of issue objects and a 250 MB answer; a body this small lists every issue.
 */
export const FULL_REPORT_MAX_VALUES = 1000;

/**
 * Validates a request body: the candidates array with candidate-check.ts when it can vouch for
 * it, the rest (and every body it cannot vouch for) with valibot, so errors are valibot's.
 */
export function rerankRequestParser(
  heads: readonly string[],
): (body: unknown) => v.SafeParseResult<ReturnType<typeof rerankRequestSchema>> {
  const full = rerankRequestSchema(heads);
  const rest = requestSchema(heads, v.unknown());
  return (body) => {
    const candidates = (body as { candidates?: unknown } | null)?.candidates;
    if (candidatesAreValid(candidates, MAX_CANDIDATES, MAX_LIST)) {
      // Up to the first issue only: on failure this pass's issues are dropped for the bounded
      // report below, and collecting 2 million of them (4 MiB of `"pinned":[1,1,…]`) took
      // seconds of CPU and ~600 MB.
      const parsed = v.safeParse(rest, body, { abortEarly: true });
      // The candidates passed through unchanged, and they are what `Candidate` accepts.
      if (parsed.success) return parsed as v.SafeParseResult<typeof full>;
    }
    const everyIssue = valuesAtMost(body, FULL_REPORT_MAX_VALUES);
    return v.safeParse(full, body, { abortEarly: !everyIssue });
  };
}

/** Whether `root` holds at most `limit` JSON values (itself included), counted without recursion. */
function valuesAtMost(root: unknown, limit: number): boolean {
  const stack: unknown[] = [root];
  let count = 0;
  while (stack.length > 0) {
    const node = stack.pop();
    if (++count + stack.length > limit) return false;
    if (typeof node !== "object" || node === null) continue;
    if (Array.isArray(node)) {
      if (count + stack.length + node.length > limit) return false;
      for (const child of node) stack.push(child);
    } else
      for (const key in node) {
        if (count + stack.length >= limit) return false;
        stack.push((node as Record<string, unknown>)[key]);
      }
  }
  return true;
}

function requestSchema<C extends v.GenericSchema>(heads: readonly string[], candidate: C) {
  const HeadName =
    heads.length > 0
      ? v.picklist(heads, `unknown head; this model's heads are ${heads.join(", ")}`)
      : v.string();
  return v.strictObject(
    {
      user: v.optional(
        v.strictObject({ id: v.optional(v.string()), features: v.optional(Features) }, objectMessage),
      ),
      context: v.optional(v.strictObject({ features: v.optional(Features) }, objectMessage)),
      candidates: v.pipe(
        v.array(candidate, "expected an array of candidates"),
        v.maxLength(MAX_CANDIDATES, `at most ${MAX_CANDIDATES} candidates per request`),
      ),
      weights: v.optional(v.record(HeadName, Weight)),
      fusion: v.optional(v.picklist(["sum", "product"], 'expected "sum" or "product"')),
      topK: v.optional(
        v.pipe(v.number(), v.integer("expected an integer >= 0"), v.minValue(0, "expected an integer >= 0")),
      ),
      explain: v.optional(v.boolean()),
      filters: v.optional(
        v.pipe(v.array(Filter, "expected an array of filters"), v.maxLength(32, "at most 32 filters")),
      ),
      pinned: v.optional(
        v.pipe(v.array(Pin, "expected an array of pins"), v.maxLength(100, "at most 100 pins")),
      ),
    },
    objectMessage,
  );
}

export type RerankRequest = v.InferOutput<ReturnType<typeof rerankRequestSchema>>;
export type Candidate = RerankRequest["candidates"][number];
export type CandidateFilter = NonNullable<RerankRequest["filters"]>[number];
export type Pin = NonNullable<RerankRequest["pinned"]>[number];
