/** The worker's routes for one served model (DESIGN.md "HTTP contract"). */
import { Hono } from "hono/tiny";
import { type ModelSource, servingModel } from "./model/serving-model.ts";
import { internalError, methodNotAllowed, notFound } from "./routes/errors.ts";
import { modelsRoute } from "./routes/models.ts";
import { rerankRoute } from "./routes/rerank.ts";

export type { ModelSource } from "./model/serving-model.ts";

export function createApp(source: ModelSource): Hono {
  const model = servingModel(source);
  const app = new Hono();
  app.get("/healthz", (c) => c.json({ status: "ok" }));
  app.get("/v1/models", modelsRoute(model));
  app.post("/v1/rerank", rerankRoute(model));
  app.all("/v1/rerank", methodNotAllowed("POST"));
  app.notFound(notFound);
  app.onError(internalError);
  return app;
}
