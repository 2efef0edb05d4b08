/**
 * POST /v1/rerank: validate -> encode -> infer -> fuse -> respond. Bad input is a 4xx problem;
 * a model that cannot load or run gives 200 with the original order and `fallback: true`.
 */
import type { Handler } from "hono";
import { FeatureValueError } from "../../shared/encoder/encode.ts";
import { describeIssues, formatIssue } from "../../shared/validation.ts";
import type { EdgeBindings } from "../env.ts";
import { backgroundOf } from "../http/background.ts";
import { readJsonBody } from "../http/body.ts";
import { problemResponse } from "../http/problem.ts";
import { ServerTiming } from "../http/server-timing.ts";
import { describeError } from "../log.ts";
import type { ModelCatalog } from "../model/catalog.ts";
import type { ServingModel } from "../model/serving-model.ts";
import { arrange } from "../rerank/arrange.ts";
import { type FallbackReason, fallbackItems } from "../rerank/fallback.ts";
import { applyFilters } from "../rerank/filters.ts";
import { ignoredFeatures, type KnownFeatures, knownFeatures } from "../rerank/ignored-features.ts";
import {
  type Fusion,
  type RankedItem,
  rankCandidates,
  resolveFusion,
  uniqueCandidates,
} from "../rerank/rank.ts";
import { rerankRequestParser } from "../rerank/schema.ts";
import { featureProblem } from "./feature-problem.ts";

/**
 * 4 MiB: room for the candidate cap (1,000) with about 4 KB of features each; 1,000 candidates
 * of 40 real features take ~1.1 MB. The origin lists of proxy mode are read within it too.
 */
export const MAX_BODY_BYTES = 4 * 1024 * 1024;

/** What a route needs of a model, worked out once per model (not per request). */
interface Prepared {
  parse: ReturnType<typeof rerankRequestParser>;
  defaults: Fusion;
  info: { id: string; version: string };
  /** The feature names the model reads, by place; undefined for a model without a manifest. */
  known: KnownFeatures | undefined;
}
const prepared = new WeakMap<ServingModel, Prepared>();

function prepare(model: ServingModel): Prepared {
  let p = prepared.get(model);
  if (!p) {
    const manifest = model.manifest;
    p = {
      parse: rerankRequestParser(manifest?.heads.map((h) => h.name) ?? []),
      defaults: manifest?.fusion.defaults ?? { weights: {}, mode: "sum" },
      info: { id: manifest?.id ?? "unavailable", version: manifest?.version ?? "unavailable" },
      known: manifest && knownFeatures(manifest.features.features),
    };
    prepared.set(model, p);
  }
  return p;
}

/** The user id, read before validation because it picks the model whose schema validates. */
function userIdOf(body: unknown): string | undefined {
  const id = (body as { user?: { id?: unknown } } | null)?.user?.id;
  return typeof id === "string" ? id : undefined;
}

export function rerankRoute(catalog: ModelCatalog): Handler<EdgeBindings> {
  return async (c) => {
    const timing = new ServerTiming();
    // "read": waiting for the body's bytes (network, not CPU); "parse" starts at JSON.parse.
    const body = await readJsonBody(c.req.raw, MAX_BODY_BYTES, () => timing.mark("read"));
    if (!body.ok) return problemResponse(body.problem);
    if (Array.isArray(body.value))
      return problemResponse({
        status: 400,
        kind: "invalid-request",
        title: "Invalid request",
        detail: "the body must be a JSON object, not an array",
        errors: [{ field: "", message: "expected an object" }],
      });
    const { model, arm, assigned, done } = await catalog.choose(c.env, userIdOf(body.value), backgroundOf(c));
    try {
      const { parse, defaults, info: modelInfo, known } = prepare(model);
      const parsed = parse(body.value);
      if (!parsed.success) {
        const errors = describeIssues(parsed.issues);
        return problemResponse({
          status: 400,
          kind: "invalid-request",
          title: "Invalid request",
          detail: errors.map(formatIssue).join("; "),
          errors,
        });
      }
      const request = parsed.output;
      const log = c.get("log");
      log.candidates = request.candidates.length;
      log.model = modelInfo;
      log.arm = arm;
      if (assigned !== arm) log.assigned = assigned;
      const unique = uniqueCandidates(request.candidates);
      const { kept: candidates, filtered } = applyFilters(unique, request.filters);
      const removed = { duplicates: request.candidates.length - unique.length, filtered };
      const place = (order: number[]) => arrange(order, candidates, request.pinned, request.topK);
      // Names the model does not read: told to the client, not an error (docs/http-api.md).
      const filterFields = request.filters?.map((f) => f.field);
      const ignored = known && ignoredFeatures(body.value, known, filterFields);
      if (ignored) log.unknownFeatures = ignored.features.length;
      timing.mark("parse");

      const respond = (items: RankedItem[], fallback: FallbackReason | null) => {
        const answer = { model: modelInfo, fallback: fallback !== null, items, removed };
        return c.json(ignored ? { ...answer, ignored } : answer, 200, {
          "x-model-version": modelInfo.version,
          "x-mtrank-arm": arm,
          "server-timing": timing.header(),
          ...(fallback ? { "x-mtrank-fallback": "1" } : {}),
        });
      };
      if (candidates.length === 0) return respond([], null);

      let reason: FallbackReason = "model_unavailable";
      try {
        const loaded = await model.load();
        log.graph = loaded.graph;
        timing.mark("load");
        reason = "inference_failed";
        const items = await rankCandidates(
          loaded,
          request,
          candidates,
          resolveFusion(request, defaults),
          timing,
          place,
        );
        return respond(items, null);
      } catch (error) {
        if (error instanceof FeatureValueError)
          return problemResponse(featureProblem(error, request, candidates));
        log.fallback = reason;
        log.error = describeError(error);
        return respond(fallbackItems(candidates, place(candidates.map((_, i) => i))), reason);
      }
    } finally {
      done();
    }
  };
}
