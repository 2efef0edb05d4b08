/**
 * GET /openapi.json: built on first request for each champion model (not at start-up) and kept.
 * Nothing in it depends on the request (its server URL is relative: openapi/document.ts), so the
 * cache is keyed by model alone and a client's Host header cannot add entries.
 */
import type { Handler } from "hono";
import type { EdgeBindings } from "../env.ts";
import { backgroundOf } from "../http/background.ts";
import type { ModelCatalog } from "../model/catalog.ts";
import type { ServingModel } from "../model/serving-model.ts";
import { openApiDocument } from "../openapi/document.ts";

export function openApiRoute(catalog: ModelCatalog, maxBodyBytes: number): Handler<EdgeBindings> {
  const built = new WeakMap<ServingModel, string>();
  return async (c) => {
    const { model, done } = await catalog.choose(c.env, undefined, backgroundOf(c));
    // Only the manifest is read, which stays when the session is released.
    done();
    let body = built.get(model);
    if (body === undefined) {
      const m = model.manifest;
      const api = m && { id: m.id, version: m.version, heads: m.heads.map((h) => h.name) };
      body = JSON.stringify(openApiDocument(api, maxBodyBytes));
      built.set(model, body);
    }
    return c.body(body, 200, { "content-type": "application/json" });
  };
}
