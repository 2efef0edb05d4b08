/** The worker's routes for one served model (DESIGN.md "HTTP contract"). */
import { Hono } from "hono/tiny";
import { type ModelSource, type ServingModel, servingModel } from "./model/serving-model.ts";
import { internalError, methodNotAllowed, notFound } from "./routes/errors.ts";
import { modelsRoute } from "./routes/models.ts";
import { rerankRoute } from "./routes/rerank.ts";

export type { ModelSource } from "./model/serving-model.ts";

/**
 * For entry files: loads the model at start-up (top-level await in module scope, which workerd
 * runs before the first request with its own CPU budget), so no request pays for instantiating
 * onnxruntime and creating the session. A model that fails to load is not fatal: the failure is
 * cached and every rerank answers with the fallback order.
 */
export async function startApp(source: ModelSource): Promise<Hono> {
  const model = servingModel(source);
  await model.load().catch(() => undefined);
  return routes(model);
}

/** The same app with the model loaded lazily on the first rerank (tests build many apps). */
export function createApp(source: ModelSource): Hono {
  return routes(servingModel(source));
}

function routes(model: ServingModel): Hono {
  const app = new Hono();
  app.get("/healthz", (c) => c.json({ status: "ok" }));
  app.get("/v1/models", modelsRoute(model));
  app.post("/v1/rerank", rerankRoute(model));
  app.all("/v1/rerank", methodNotAllowed("POST"));
  app.notFound(notFound);
  app.onError(internalError);
  return app;
}
