/**
 * The OpenAPI 3.1 description of the worker, built from the valibot schemas that validate the
 * requests (rerank/schema.ts) and describe the responses (rerank/response-schema.ts). It must pass
 * `redocly lint` with the recommended rules, errors and warnings alike (test/openapi/lint.test.ts).
 */
import type { JsonSchema } from "@valibot/to-json-schema";
import * as v from "valibot";
import {
  HealthResponseSchema,
  ModelsResponseSchema,
  ProblemSchema,
  RerankResponseSchema,
} from "../rerank/response-schema.ts";
import { MAX_CANDIDATES, rerankRequestSchema } from "../rerank/schema.ts";
import { jsonSchemaOf } from "./json-schema.ts";

export interface ApiModel {
  id: string;
  version: string;
  heads: readonly string[];
}

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: object) => ({ "application/json": { schema } });

function problem(description: string) {
  return { description, content: { "application/problem+json": { schema: ref("Problem") } } };
}

const unauthorized = problem("No valid API key (only when the worker has MTRANK_API_KEYS set).");
const keysUnusable = problem(
  'MTRANK_API_KEYS is set but none of its keys is usable (/healthz says auth: "misconfigured"): the API stays closed rather than opening up.',
);
/** The open routes have no client error of their own; this says what shape one would still have. */
const clientError = problem("Any client error the worker sends is an RFC 9457 problem.");
const header = (description: string) => ({ description, schema: { type: "string" } });

/**
 * The token syntax Hono's bearer-auth accepts (TOKEN_STRINGS in
 * hono/dist/middleware/bearer-auth/index.js, RFC 6750's b64token); a key outside it can never
 * match a request. test/openapi/lint.test.ts checks it against the installed Hono.
 */
export const BEARER_TOKEN_PATTERN = "^[A-Za-z0-9._~+/-]+=*$";

const bearerDescription = [
  "An API key, sent as `Authorization: Bearer <key>`.",
  "Keys are configured in the MTRANK_API_KEYS secret (`wrangler secret put MTRANK_API_KEYS`), comma separated; spaces around a key are trimmed.",
  `A key may use only the characters Hono's bearer auth accepts, the pattern \`${BEARER_TOKEN_PATTERN}\`:`,
  "one or more ASCII letters, digits, `-`, `.`, `_`, `~`, `+` or `/`, optionally followed by `=` padding (at the end only).",
  "A configured key with any other character (space, comma, quote, `:`, non-ASCII...) can never match: the worker leaves it out and logs an error.",
  'Enforced only where MTRANK_API_KEYS is set; GET /healthz says which (`auth`): a deployment without keys ("open") ignores the header.',
].join(" ");

/**
 * GET /healthz's body, with `auth` described here: the response schema is shared with the tests,
 * which parse real responses with it, so its words for the document live with the document.
 */
const HealthDocumentedSchema = v.strictObject({
  ...HealthResponseSchema.entries,
  auth: v.pipe(
    HealthResponseSchema.entries.auth,
    v.description(
      'How /v1/* is guarded. "api-key": MTRANK_API_KEYS holds usable keys and every /v1/* request needs one (bearer). ' +
        '"open": no keys are set, anyone can call /v1/*. ' +
        '"misconfigured": keys are set but none is usable, so /v1/* answers 503 instead of opening up.',
    ),
  ),
});

/**
 * Security is declared on every operation, with no document-wide default, so the lint's
 * security-defined rule fails a new operation until it says whether it is guarded. /v1/* lists
 * the key as required: a client that sends one works against open deployments too.
 */
const bearer = [{ bearer: [] }];
/** /healthz and /openapi.json: open even where keys are set (app.ts guards /v1/* only). */
const open: never[] = [];

/**
 * `model`: the model this worker serves (its heads are the allowed weight names), if any.
 * `withheld`: the model is left out on purpose (keys are set, and this document is public), so
 * the description says where to find it rather than "none loaded".
 */
export function openApiDocument(model: ApiModel | undefined, maxBodyBytes: number, withheld = false) {
  const schemas: Record<string, JsonSchema> = {
    RerankRequest: jsonSchemaOf(rerankRequestSchema(model?.heads ?? [])),
    RerankResponse: jsonSchemaOf(RerankResponseSchema),
    Problem: jsonSchemaOf(ProblemSchema),
    ModelsResponse: jsonSchemaOf(ModelsResponseSchema),
    HealthResponse: jsonSchemaOf(HealthDocumentedSchema),
  };
  const serving = model
    ? `${model.id} ${model.version} (heads: ${model.heads.join(", ")})`
    : withheld
      ? "listed by GET /v1/models, which needs an API key (weight names are not checked in this document)"
      : "none loaded";
  return {
    openapi: "3.1.0",
    info: {
      title: "mtrank edge worker",
      version: "1",
      description: `Reranks a candidate list with a multi-task model and fuses its heads. Serving model: ${serving}.`,
      // package.json is private with no licence (npm's "UNLICENSED"); LicenseRef- is SPDX's form
      // for a licence not on its list, which info-license-strict accepts in place of a URL.
      license: { name: "Proprietary", identifier: "LicenseRef-Proprietary" },
    },
    // Relative: the worker answers under many hostnames (workers.dev, custom domains, routes in
    // front of an origin), and "/" resolves against wherever this document was fetched from. So
    // one cached body per model serves every host, and nothing from the Host header is echoed
    // into it (a per-origin URL would need a cache keyed by a header anyone can set).
    servers: [{ url: "/", description: "The worker this document was fetched from." }],
    paths: {
      "/v1/rerank": {
        post: {
          operationId: "rerank",
          summary: "Score every candidate with every head, fuse the heads and return the list reordered",
          security: bearer,
          requestBody: { required: true, content: json(ref("RerankRequest")) },
          responses: {
            "200": {
              description:
                "The reordered list. When the model cannot serve, the request's order with fallback: true.",
              headers: {
                "x-model-version": header("Version of the model that served the request."),
                "x-mtrank-arm": header(
                  "A/B arm that served: champion or challenger (MTRANK_CHALLENGER_SHARE).",
                ),
                "x-mtrank-fallback": header('"1" when the answer is the fallback order.'),
                "server-timing": header("parse, load, encode, infer and fuse phases."),
              },
              content: json(ref("RerankResponse")),
            },
            "400": problem(
              `Invalid JSON or a field that breaks the schema (at most ${MAX_CANDIDATES} candidates); errors[] name the fields.`,
            ),
            "401": unauthorized,
            "413": problem(`The body is larger than ${maxBodyBytes} bytes.`),
            "503": keysUnusable,
          },
        },
      },
      "/v1/models": {
        get: {
          operationId: "models",
          summary: "Manifest summary of the serving model(s)",
          security: bearer,
          responses: {
            "200": { description: "Serving models.", content: json(ref("ModelsResponse")) },
            "401": unauthorized,
            "503": keysUnusable,
          },
        },
      },
      "/healthz": {
        get: {
          operationId: "health",
          summary: "Liveness, and whether /v1/* needs an API key",
          security: open,
          responses: {
            "200": { description: "The worker is up.", content: json(ref("HealthResponse")) },
            "4XX": clientError,
          },
        },
      },
      "/openapi.json": {
        get: {
          operationId: "openapi",
          summary: "This document",
          security: open,
          responses: {
            "200": { description: "OpenAPI 3.1 document.", content: json({ type: "object" }) },
            "4XX": clientError,
          },
        },
      },
    },
    components: {
      schemas,
      securitySchemes: {
        bearer: { type: "http", scheme: "bearer", description: bearerDescription },
      },
    },
  };
}
