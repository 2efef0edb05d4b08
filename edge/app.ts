/** The worker's routes for one served model (docs/http-api.md). */
import { Hono } from "hono/tiny";
import type { EdgeBindings, EdgeEnv } from "./env.ts";
import { apiKeys } from "./http/api-keys.ts";
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
  await checkSettingsAtStartUp();
  await Promise.all(
    [catalog.bundled, catalog.bundledChallenger].map((m) => m?.load().catch(() => undefined)),
  );
  return routes(catalog);
}

/**
 * Says at start-up, not at the first request, what a deployment's settings leave open or broken
 * (an API with no key, keys that can never match). Workers expose the bindings to module scope
 * through "cloudflare:workers"; elsewhere there is nothing to check yet.
 */
async function checkSettingsAtStartUp(): Promise<void> {
  let env: EdgeEnv | undefined;
  try {
    // Typed by test/edge/cloudflare-workers.d.ts for the tests; the worker reads only `env`.
    ({ env } = (await import("cloudflare:workers")) as unknown as { env?: EdgeEnv });
  } catch {
    return;
  }
  apiKeys(env?.MTRANK_API_KEYS);
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
  app.get("/healthz", (c) => c.json({ status: "ok", auth: apiKeys(c.env?.MTRANK_API_KEYS).mode }));
  app.get("/openapi.json", openApiRoute(models, MAX_BODY_BYTES));
  app.get("/v1/models", modelsRoute(models));
  app.post("/v1/rerank", rerankRoute(models));
  app.all("/v1/rerank", methodNotAllowed("POST"));
  app.all("/v1/models", methodNotAllowed("GET"));
  app.all("/healthz", methodNotAllowed("GET"));
  app.all("/openapi.json", methodNotAllowed("GET"));
  // /v1/* is the worker's own namespace: an unknown path there is never the origin's.
  app.all("/v1/*", notFound);
  app.all("*", proxyRoute(models));
  app.notFound(notFound);
  app.onError(internalError);
  return app;
}
