/**
 * The models a worker can serve, per isolate: the champion (bundled, or R2 via the KV pointer
 * `models/current`). Routes ask it which model serves a request.
 */
import { type EdgeEnv, modelStore, numberSetting } from "../env.ts";
import { describeError, logLine } from "../log.ts";
import type { ServingModel } from "./serving-model.ts";
import { modelSlot } from "./slot.ts";

export const CURRENT_POINTER = "models/current";
const DEFAULT_REFRESH_S = 60;

export type Arm = "champion" | "challenger";

export interface ModelChoice {
  model: ServingModel;
  arm: Arm;
}

export interface ModelCatalog {
  /** The bundled champion (start-up loads it). */
  bundled: ServingModel;
  /** The model that serves this request's user. */
  choose(env: EdgeEnv | undefined, userId: string | undefined): Promise<ModelChoice>;
  /** Every model serving now (GET /v1/models). */
  serving(env: EdgeEnv | undefined): Promise<ModelChoice[]>;
}

export function modelCatalog(bundled: ServingModel): ModelCatalog {
  const champion = modelSlot(CURRENT_POINTER, bundled);
  const currentChampion = async (env: EdgeEnv | undefined): Promise<ServingModel> =>
    (await champion.current(modelStore(env), refreshSeconds(env))) ?? bundled;
  return {
    bundled,
    async choose(env) {
      return { model: await currentChampion(env), arm: "champion" };
    },
    async serving(env) {
      return [{ model: await currentChampion(env), arm: "champion" }];
    },
  };
}

function refreshSeconds(env: EdgeEnv | undefined): number {
  try {
    return numberSetting(env, "MTRANK_MODEL_REFRESH_S", DEFAULT_REFRESH_S, 0, 86_400);
  } catch (error) {
    // A bad var must not break serving: say so and use the default.
    logLine("error", "config.invalid", { error: describeError(error) });
    return DEFAULT_REFRESH_S;
  }
}
