/**
 * The OpenAPI 3.1 description of the worker, built from the valibot schemas that validate the
 * requests (rerank/schema.ts) and describe the responses (rerank/response-schema.ts).
 */
import type { JsonSchema } from "@valibot/to-json-schema";
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
const header = (description: string) => ({ description, schema: { type: "string" } });

/** `model`: the model this worker serves (its heads are the allowed weight names), if any. */
export function openApiDocument(model: ApiModel | undefined, maxBodyBytes: number) {
  const schemas: Record<string, JsonSchema> = {
    RerankRequest: jsonSchemaOf(rerankRequestSchema(model?.heads ?? [])),
    RerankResponse: jsonSchemaOf(RerankResponseSchema),
    Problem: jsonSchemaOf(ProblemSchema),
    ModelsResponse: jsonSchemaOf(ModelsResponseSchema),
    HealthResponse: jsonSchemaOf(HealthResponseSchema),
  };
  const serving = model ? `${model.id} ${model.version} (heads: ${model.heads.join(", ")})` : "none loaded";
  return {
    openapi: "3.1.0",
    info: {
      title: "mtrank edge worker",
      version: "1",
      description: `Reranks a candidate list with a multi-task model and fuses its heads. Serving model: ${serving}.`,
    },
    paths: {
      "/v1/rerank": {
        post: {
          operationId: "rerank",
          summary: "Score every candidate with every head, fuse the heads and return the list reordered",
          security: [{ apiKey: [] }, {}],
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
          },
        },
      },
      "/v1/models": {
        get: {
          operationId: "models",
          summary: "Manifest summary of the serving model(s)",
          security: [{ apiKey: [] }, {}],
          responses: {
            "200": { description: "Serving models.", content: json(ref("ModelsResponse")) },
            "401": unauthorized,
          },
        },
      },
      "/healthz": {
        get: {
          operationId: "health",
          summary: "Liveness",
          responses: { "200": { description: "The worker is up.", content: json(ref("HealthResponse")) } },
        },
      },
      "/openapi.json": {
        get: {
          operationId: "openapi",
          summary: "This document",
          responses: { "200": { description: "OpenAPI 3.1 document.", content: json({ type: "object" }) } },
        },
      },
    },
    components: {
      schemas,
      securitySchemes: {
        apiKey: { type: "http", scheme: "bearer", description: "A key from MTRANK_API_KEYS." },
      },
    },
  };
}
