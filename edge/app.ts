/** The worker's routes for one served model (DESIGN.md "HTTP contract"). */
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
import { MAX_BODY_BYTES, rerankRoute } from "./routes/rerank.ts";

export type { ModelSource } from "./model/serving-model.ts";

/**
 * For entry files: loads the model at start-up (top-level await in module scope, which workerd
 * runs before the first request with its own CPU budget), so no request pays for instantiating
 * onnxruntime and creating the session. A model that fails to load is not fatal: the failure is
 * cached and every rerank answers with the fallback order.
 */
export async function startApp(source: ModelSource): Promise<Hono<EdgeBindings>> {
  const catalog = modelCatalog(servingModel(source));
  await catalog.bundled.load().catch(() => undefined);
  return routes(catalog);
}

/** The same app with the model loaded lazily on the first rerank (tests build many apps). */
export function createApp(source: ModelSource): Hono<EdgeBindings> {
  return routes(modelCatalog(servingModel(source)));
}

function routes(models: ModelCatalog): Hono<EdgeBindings> {
  const app = new Hono<EdgeBindings>();
  app.use("*", requestLog());
  app.use("*", corsAllowList());
  app.use("/v1/*", apiKeyAuth());
  app.get("/healthz", (c) => c.json({ status: "ok" }));
  app.get("/openapi.json", openApiRoute(models, MAX_BODY_BYTES));
  app.get("/v1/models", modelsRoute(models));
  app.post("/v1/rerank", rerankRoute(models));
  app.all("/v1/rerank", methodNotAllowed("POST"));
  app.notFound(notFound);
  app.onError(internalError);
  return app;
}
