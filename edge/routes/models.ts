/** GET /v1/models: the manifest summary of each serving model and the arm it serves in. */
import type { Handler } from "hono";
import type { EdgeBindings } from "../env.ts";
import { backgroundOf } from "../http/background.ts";
import type { ModelCatalog } from "../model/catalog.ts";
import { manifestSummary } from "../model/manifest.ts";

export function modelsRoute(catalog: ModelCatalog): Handler<EdgeBindings> {
  return async (c) => {
    const serving = await catalog.serving(c.env, backgroundOf(c));
    const models = serving.flatMap(({ model, arm }) =>
      model.manifest ? [{ ...manifestSummary(model.manifest), arm }] : [],
    );
    return c.json({ models });
  };
}
