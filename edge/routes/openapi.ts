/** GET /openapi.json: built on the first request (not at start-up, which reranks need) and kept. */
import type { Handler } from "hono";
import type { ServingModel } from "../model/serving-model.ts";
import { openApiDocument } from "../openapi/document.ts";

export function openApiRoute(model: ServingModel, maxBodyBytes: number): Handler {
  let body: string | undefined;
  return (c) => {
    const m = model.manifest;
    body ??= JSON.stringify(
      openApiDocument(m && { id: m.id, version: m.version, heads: m.heads.map((h) => h.name) }, maxBodyBytes),
    );
    return c.body(body, 200, { "content-type": "application/json" });
  };
}
