/**
 * The shapes the worker answers with (docs/http-api.md), as valibot schemas: they
 * document the responses in /openapi.json, and the tests parse real responses with them.
 */
import * as v from "valibot";
import { MAX_LISTED, MAX_NAME_LENGTH } from "./ignored-features.ts";

const Count = v.pipe(v.number(), v.integer(), v.minValue(0));

export const RankedItemSchema = v.pipe(
  v.strictObject({
    id: v.string(),
    score: v.number(),
    heads: v.record(v.string(), v.number()),
    contributions: v.optional(v.record(v.string(), v.number())),
  }),
  v.description("A candidate in its final place; fallback items have score 0 and no heads."),
);

export const RerankResponseSchema = v.strictObject({
  model: v.pipe(
    v.strictObject({ id: v.string(), version: v.string() }),
    v.description("The model that served (also in the x-model-version header)."),
  ),
  fallback: v.pipe(
    v.boolean(),
    v.description("true: the model could not serve; items keep the request's order (x-mtrank-fallback: 1)."),
  ),
  items: v.array(RankedItemSchema),
  removed: v.strictObject({
    duplicates: v.pipe(Count, v.description("Candidates dropped because an earlier one had the same id.")),
    filtered: v.pipe(Count, v.description("Candidates dropped by the request's filters.")),
  }),
  ignored: v.optional(
    v.pipe(
      v.strictObject({
        features: v.pipe(
          v.array(v.string()),
          v.maxLength(MAX_LISTED),
          v.description(
            `Where each ignored name was sent: user.features.<name>, context.features.<name> or candidates.*.features.<name>; at most ${MAX_LISTED}, a name over ${MAX_NAME_LENGTH} characters cut to ${MAX_NAME_LENGTH} and ended with "…".`,
          ),
        ),
        more: v.pipe(v.boolean(), v.description("true: further names were ignored beyond those listed.")),
      }),
      v.description(
        "Present when the request sent feature names the model does not read where they were sent (a typo, a feature of another model, a feature in the wrong place): they were ignored, read as missing.",
      ),
    ),
  ),
});

/** RFC 9457 problem details, as edge/http/problem.ts writes them. */
export const ProblemSchema = v.strictObject({
  type: v.pipe(v.string(), v.description("urn:mtrank:problem:<kind>")),
  title: v.string(),
  status: v.pipe(v.number(), v.integer()),
  detail: v.string(),
  errors: v.optional(
    v.array(
      v.strictObject({
        field: v.pipe(v.string(), v.description('Dot path of the offending field ("" for the body).')),
        message: v.string(),
      }),
    ),
  ),
});

export const ModelsResponseSchema = v.strictObject({
  models: v.array(
    v.looseObject({
      id: v.string(),
      version: v.string(),
      arch: v.string(),
      heads: v.array(v.strictObject({ name: v.string(), type: v.picklist(["binary", "regression"]) })),
      createdAt: v.string(),
      metrics: v.record(v.string(), v.unknown()),
      files: v.record(v.string(), v.unknown()),
    }),
  ),
});

export const HealthResponseSchema = v.strictObject({
  status: v.literal("ok"),
  /**
   * How /v1/* is guarded: "api-key" (MTRANK_API_KEYS holds valid keys), "open" (no keys set:
   * anyone can call the API), "misconfigured" (keys set but none usable: /v1/* answers 503).
   */
  auth: v.picklist(["api-key", "open", "misconfigured"]),
});
