/**
 * The models a worker can serve, per isolate: the champion (bundled, or R2 via the KV pointer
 * `models/current`) and an optional challenger (bundled by the entry, or `models/challenger`)
 * that serves MTRANK_CHALLENGER_SHARE percent of users, chosen by a stable hash of the user id.
 * A request without a user id, or a challenger that is absent or failed, gets the champion.
 */
import { type EdgeEnv, modelStore, numberSetting } from "../env.ts";
import type { Background } from "../http/background.ts";
import { describeError, logLine } from "../log.ts";
import { type Arm, assignArm } from "./ab-split.ts";
import type { ServingModel } from "./serving-model.ts";
import { modelSlot } from "./slot.ts";
import type { ModelStore } from "./store.ts";

export type { Arm } from "./ab-split.ts";

export const CURRENT_POINTER = "models/current";
export const CHALLENGER_POINTER = "models/challenger";
const DEFAULT_REFRESH_S = 60;

export interface ModelChoice {
  model: ServingModel;
  arm: Arm;
}

export interface ModelCatalog {
  /** The bundled champion (start-up loads it). */
  bundled: ServingModel;
  /** The bundled challenger, if the entry has one. */
  bundledChallenger: ServingModel | undefined;
  /**
   * The model that serves this request's user. `background` receives work the request starts
   * but must not wait for (a new model loading after its pointer changed).
   */
  choose(env: EdgeEnv | undefined, userId: string | undefined, background?: Background): Promise<ModelChoice>;
  /** Every model serving now (GET /v1/models). */
  serving(env: EdgeEnv | undefined, background?: Background): Promise<ModelChoice[]>;
}

export function modelCatalog(bundled: ServingModel, bundledChallenger?: ServingModel): ModelCatalog {
  const champion = modelSlot(CURRENT_POINTER, bundled);
  const challenger = modelSlot(CHALLENGER_POINTER, bundledChallenger);
  const championNow = async (env: EdgeEnv | undefined): Promise<ModelChoice> => ({
    model: (await champion.current(store(env), refreshSeconds(env))) ?? bundled,
    arm: "champion",
  });
  const challengerNow = async (env: EdgeEnv | undefined): Promise<ModelChoice | undefined> => {
    const model = await challenger.current(store(env), refreshSeconds(env));
    return model && { model, arm: "challenger" };
  };
  return {
    bundled,
    bundledChallenger,
    async choose(env, userId) {
      const share = setting(env, "MTRANK_CHALLENGER_SHARE", 0, 100, 0);
      if (userId !== undefined && share > 0 && assignArm(userId, share) === "challenger")
        return (await challengerNow(env)) ?? championNow(env);
      return championNow(env);
    },
    async serving(env) {
      const share = setting(env, "MTRANK_CHALLENGER_SHARE", 0, 100, 0);
      const second = share > 0 ? await challengerNow(env) : undefined;
      return [await championNow(env), ...(second ? [second] : [])];
    },
  };
}

/** The R2 + KV store; a bad MTRANK_MODEL_WEIGHTS is logged and float32 served. */
function store(env: EdgeEnv | undefined): ModelStore | undefined {
  try {
    return modelStore(env);
  } catch (error) {
    logLine("error", "config.invalid", { error: describeError(error) });
    return modelStore({ ...env, MTRANK_MODEL_WEIGHTS: "float32" });
  }
}

function refreshSeconds(env: EdgeEnv | undefined): number {
  return setting(env, "MTRANK_MODEL_REFRESH_S", 0, 86_400, DEFAULT_REFRESH_S);
}

function setting(
  env: EdgeEnv | undefined,
  name: "MTRANK_MODEL_REFRESH_S" | "MTRANK_CHALLENGER_SHARE",
  min: number,
  max: number,
  fallback: number,
): number {
  try {
    return numberSetting(env, name, fallback, min, max);
  } catch (error) {
    // A bad var must not break serving: say so and use the default.
    logLine("error", "config.invalid", { error: describeError(error) });
    return fallback;
  }
}
