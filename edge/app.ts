/** The worker's routes for one served model (docs/design.md "HTTP contract"). */
import { Hono } from "hono/tiny";
import type { EdgeBindings } from "./env.ts";
import { apiKeyAuth } from "./http/auth.ts";
import { corsAllowList } from "./http/cors.ts";
import { requestLog } from "./http/request-log.ts";
import { type ModelCatalog, modelCatalog } from "./model/catalog.ts";
import { type ModelSource, servingModel } from "./model/serving-model.ts";
import { internalError, methodNotAllowed, notFound } from "./routes/errors.ts";
import { modelsRoute } from "./routes/models.ts";
import { openApiRoute } from "./routes/openapi.ts";
import { proxyRoute } from "./routes/proxy.ts";
import { MAX_BODY_BYTES, rerankRoute } from "./routes/rerank.ts";

export type { ModelSource } from "./model/serving-model.ts";

/**
 * For entry files: loads the model at start-up (top-level await in module scope, which workerd
 * runs before the first request with its own CPU budget), so no request pays for instantiating
 * onnxruntime and creating the session. A model that fails to load is not fatal: the failure is
 * cached and every rerank answers with the fallback order.
 */
export async function startApp(source: ModelSource, options: AppOptions = {}): Promise<Hono<EdgeBindings>> {
  const catalog = catalogOf(source, options);
  await Promise.all(
    [catalog.bundled, catalog.bundledChallenger].map((m) => m?.load().catch(() => undefined)),
  );
  return routes(catalog);
}

/** The same app with the model loaded lazily on the first rerank (tests build many apps). */
export function createApp(source: ModelSource, options: AppOptions = {}): Hono<EdgeBindings> {
  return routes(catalogOf(source, options));
}

export interface AppOptions {
  /** A bundled challenger model for the A/B split (MTRANK_CHALLENGER_SHARE); R2 can supply one too. */
  challenger?: ModelSource;
}

function catalogOf(source: ModelSource, options: AppOptions): ModelCatalog {
  return modelCatalog(servingModel(source), options.challenger && servingModel(options.challenger));
}

function routes(models: ModelCatalog): Hono<EdgeBindings> {
  const app = new Hono<EdgeBindings>();
  app.use("*", requestLog());
  // CORS on the worker's own API only: proxied origin responses pass through untouched.
  const cors = corsAllowList();
  for (const path of ["/v1/*", "/healthz", "/openapi.json"]) app.use(path, cors);
  app.use("/v1/*", apiKeyAuth());
  app.get("/healthz", (c) => c.json({ status: "ok" }));
  app.get("/openapi.json", openApiRoute(models, MAX_BODY_BYTES));
  app.get("/v1/models", modelsRoute(models));
  app.post("/v1/rerank", rerankRoute(models));
  app.all("/v1/rerank", methodNotAllowed("POST"));
  app.all("*", proxyRoute(models));
  app.notFound(notFound);
  app.onError(internalError);
  return app;
}
