/**
 * The models a worker can serve, per isolate: the champion (bundled, or R2 via the KV pointer
 * `models/current`) and an optional challenger (bundled by the entry, or `models/challenger`)
 * that serves MTRANK_CHALLENGER_SHARE percent of users, chosen by a stable hash of the user id
 * salted per experiment (MTRANK_AB_SALT, else the challenger model's id and version). A request
 * without a user id (or with a blank one), or a challenger that is absent or failed, gets the
 * champion.
 *
 * The two slots share one load queue (load-queue.ts): one graph loads at a time in the isolate,
 * the champion's first. Every request asks the champion's slot before the challenger's, even one
 * the challenger serves, so in a fresh isolate the champion's refresh is the first in the queue.
 */
import { abSaltSetting, type EdgeEnv, type NumberSettingName, numberSetting } from "../env.ts";
import { describeError, logLine } from "../log.ts";
import { type Arm, assignArm, modelSalt, type SaltState, saltState } from "./ab-split.ts";
import { loadQueue } from "./load-queue.ts";
import { DEFAULT_MANIFEST_MAX_BYTES, DEFAULT_MODEL_MAX_BYTES } from "./remote.ts";
import type { ServingModel } from "./serving-model.ts";
import { type Background, modelSlot, type SlotOptions, type SlotSettings } from "./slot.ts";
import { type ModelStore, modelStore } from "./store.ts";

export type { Arm } from "./ab-split.ts";

export const CURRENT_POINTER = "models/current";
export const CHALLENGER_POINTER = "models/challenger";
/** The load queue's ranks: the champion's loads go before the challenger's. */
const CHAMPION_RANK = 0;
const CHALLENGER_RANK = 1;
const DEFAULT_REFRESH_S = 60;
/** MTRANK_MODEL_MAX_BYTES above this is a typo: no Worker holds a graph that large. */
const MODEL_MAX_BYTES_LIMIT = 2 ** 30;
/** MTRANK_MANIFEST_MAX_BYTES above this is a typo: a Worker isolate has 128 MB in all. */
const MANIFEST_MAX_BYTES_LIMIT = 128 * 1024 * 1024;

/**
 * The arm a user is assigned: "unknown" when the split's salt is not known (no MTRANK_AB_SALT,
 * and no challenger model loaded in this isolate to salt it with); such a user gets the champion.
 */
export type Assignment = Arm | "unknown";

export interface ModelChoice {
  model: ServingModel;
  arm: Arm;
}

/** A model chosen for a request, held until `done` (its session is not released before). */
export interface HeldChoice extends ModelChoice {
  /**
   * The arm the user's bucket assigns, which `arm` (the one that serves) differs from while the
   * challenger is absent, still loading in this isolate, or failed: "challenger" under
   * MTRANK_AB_SALT, "unknown" without it (the salt is the challenger's identity, not known yet).
   */
  assigned: Assignment;
  /** The request no longer uses the model (call once, when it has answered or given up). */
  done(): void;
}

export interface ModelCatalog {
  /** The bundled champion (start-up loads it). */
  bundled: ServingModel;
  /** The bundled challenger, if the entry has one. */
  bundledChallenger: ServingModel | undefined;
  /**
   * The model that serves this request's user, at once: `background` receives work the request
   * starts but must not wait for (reading the pointers, a new model loading). The model is held
   * from here, with no await between the choice and the hold, so a swap meanwhile cannot
   * release it; the caller calls `done` when it is finished with it.
   */
  choose(env: EdgeEnv | undefined, userId: string | undefined, background?: Background): Promise<HeldChoice>;
  /** Every model serving now (GET /v1/models). */
  serving(env: EdgeEnv | undefined, background?: Background): Promise<ModelChoice[]>;
}

/**
 * `options` (a clock, the load deadline, the retry backoff, the load queue) apply to both slots;
 * without a queue they share one of their own. One catalog serves an isolate (app.ts).
 */
export function modelCatalog(
  bundled: ServingModel,
  bundledChallenger?: ServingModel,
  options: SlotOptions = {},
): ModelCatalog {
  const report = reportOnce();
  const store = (env: EdgeEnv | undefined) => storeOf(env, report);
  const slotSettings = (env: EdgeEnv | undefined) => slotSettingsOf(env, report);
  const challengerShare = (env: EdgeEnv | undefined) =>
    settingOf(env, "MTRANK_CHALLENGER_SHARE", 0, 100, 0, report);
  const salts = saltStates(report);
  const loads = options.loads ?? loadQueue({ now: options.now });
  const champion = modelSlot(CURRENT_POINTER, bundled, { ...options, loads, loadRank: CHAMPION_RANK });
  const challenger = modelSlot(CHALLENGER_POINTER, bundledChallenger, {
    ...options,
    loads,
    loadRank: CHALLENGER_RANK,
  });
  /** The slots as one request sees them: the champion's is asked first (its refresh queues first). */
  const slotsNow = (env: EdgeEnv | undefined, share: number, background?: Background) => {
    const models = store(env);
    const settings = slotSettings(env);
    const first: ModelChoice = {
      model: champion.current(models, settings, background) ?? bundled,
      arm: "champion",
    };
    const model = share > 0 ? challenger.current(models, settings, background) : undefined;
    const second: ModelChoice | undefined = model && { model, arm: "challenger" };
    return { first, second };
  };
  return {
    bundled,
    bundledChallenger,
    async choose(env, userId, background) {
      // A blank id is what a client sends when it has none: hashed, all such traffic would
      // share one bucket and move between arms as a block.
      const id = userId?.trim() ? userId : undefined;
      const share = challengerShare(env);
      const split = id !== undefined && share > 0;
      const { first, second } = slotsNow(env, split ? share : 0, background);
      let assigned: Assignment = "champion";
      let choice = first;
      if (split) {
        const salt = salts.of(env, second?.model);
        assigned = salt === undefined ? "unknown" : assignArm(id, share, salt);
        if (assigned === "challenger" && second) choice = second;
      }
      return { ...choice, assigned, done: choice.model.hold() };
    },
    async serving(env, background) {
      const { first, second } = slotsNow(env, challengerShare(env), background);
      return [first, ...(second ? [second] : [])];
    },
  };
}

/** Logs a configuration error. */
type Report = (error: unknown) => void;

/**
 * The split's salt for a request, hashed once per distinct salt and kept, so a request only
 * looks it up: MTRANK_AB_SALT when set (a bad value is reported and left out), else the
 * challenger model's identity (modelSalt), else undefined (no challenger model to salt with).
 */
function saltStates(report: Report) {
  let operator: { raw: unknown; state: SaltState | undefined } | undefined;
  const models = new WeakMap<ServingModel, SaltState | undefined>();
  const operatorState = (env: EdgeEnv | undefined): SaltState | undefined => {
    const raw: unknown = env?.MTRANK_AB_SALT;
    if (operator === undefined || operator.raw !== raw) {
      let salt: string | undefined;
      try {
        salt = abSaltSetting(env);
      } catch (error) {
        report(error);
      }
      operator = { raw, state: salt === undefined ? undefined : saltState(salt) };
    }
    return operator.state;
  };
  const modelState = (model: ServingModel): SaltState | undefined => {
    if (!models.has(model)) {
      const manifest = model.manifest;
      models.set(model, manifest && saltState(modelSalt(manifest)));
    }
    return models.get(model);
  };
  return {
    of(env: EdgeEnv | undefined, challenger: ServingModel | undefined): SaltState | undefined {
      const operatorSalt = operatorState(env);
      if (operatorSalt !== undefined) return operatorSalt;
      return challenger && modelState(challenger);
    },
  };
}

/**
 * Settings are read on every request, so a bad value would log on every request (up to five
 * lines each); each distinct error is logged once per catalog, that is once per isolate.
 */
function reportOnce(): Report {
  const seen = new Set<string>();
  return (error) => {
    const message = describeError(error);
    if (seen.has(message)) return;
    seen.add(message);
    logLine("error", "config.invalid", { error: message });
  };
}

/** The R2 + KV store; a bad MTRANK_MODEL_WEIGHTS is logged and float32 served. */
function storeOf(env: EdgeEnv | undefined, report: Report): ModelStore | undefined {
  try {
    return modelStore(env);
  } catch (error) {
    report(error);
    return modelStore({ ...env, MTRANK_MODEL_WEIGHTS: "float32" });
  }
}

function slotSettingsOf(env: EdgeEnv | undefined, report: Report): SlotSettings {
  const setting = (name: NumberSettingName, min: number, max: number, fallback: number) =>
    settingOf(env, name, min, max, fallback, report);
  return {
    refreshSeconds: setting("MTRANK_MODEL_REFRESH_S", 0, 86_400, DEFAULT_REFRESH_S),
    maxModelBytes: setting("MTRANK_MODEL_MAX_BYTES", 1, MODEL_MAX_BYTES_LIMIT, DEFAULT_MODEL_MAX_BYTES),
    maxManifestBytes: setting(
      "MTRANK_MANIFEST_MAX_BYTES",
      1,
      MANIFEST_MAX_BYTES_LIMIT,
      DEFAULT_MANIFEST_MAX_BYTES,
    ),
  };
}

function settingOf(
  env: EdgeEnv | undefined,
  name: NumberSettingName,
  min: number,
  max: number,
  fallback: number,
  report: Report,
): number {
  try {
    return numberSetting(env, name, fallback, min, max);
  } catch (error) {
    // A bad var must not break serving: say so and use the default.
    report(error);
    return fallback;
  }
}
