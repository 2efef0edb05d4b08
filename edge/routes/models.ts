/** GET /v1/models: the manifest summary of the serving model. */
import type { Handler } from "hono";
import { manifestSummary } from "../model/manifest.ts";
import type { ServingModel } from "../model/serving-model.ts";

export function modelsRoute(model: ServingModel): Handler {
  const body = { models: model.manifest ? [manifestSummary(model.manifest)] : [] };
  return (c) => c.json(body);
}
