/**
 * GET /openapi.json: built on first request for each champion model (not at start-up) and kept.
 * Nothing in it depends on the request (its server URL is relative: openapi/document.ts), so the
 * cache is keyed by model alone and a client's Host header cannot add entries. The route is open,
 * so where API keys are set the document leaves the serving model out (id, version, heads): that
 * is what GET /v1/models gives a key holder, and nobody else's to read.
 */
import type { Handler } from "hono";
import type { EdgeBindings } from "../env.ts";
import { apiKeys } from "../http/api-keys.ts";
import { backgroundOf } from "../http/background.ts";
import type { ModelCatalog } from "../model/catalog.ts";
import type { ServingModel } from "../model/serving-model.ts";
import { openApiDocument } from "../openapi/document.ts";

export function openApiRoute(catalog: ModelCatalog, maxBodyBytes: number): Handler<EdgeBindings> {
  const built = new WeakMap<ServingModel, string>();
  let withheld: string | undefined;
  return async (c) => {
    const headers = { "content-type": "application/json" };
    // "misconfigured" (keys set, none usable) withholds too: the keys were meant to guard it.
    if (apiKeys(c.env?.MTRANK_API_KEYS).mode !== "open") {
      withheld ??= JSON.stringify(openApiDocument(undefined, maxBodyBytes, true));
      return c.body(withheld, 200, headers);
    }
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
    return c.body(body, 200, headers);
  };
}
