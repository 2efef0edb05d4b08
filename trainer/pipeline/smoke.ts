/**
 * The smoke test after a publish: the serving worker at a URL answers with the new model.
 *
 *  1. GET /v1/models until the new model's id and version serve in the published arm (champion
 *     for models/current, challenger for models/challenger). The worker re-reads its KV pointer
 *     every minute and KV itself takes up to ~60 s to propagate, so this polls, within a deadline.
 *  2. POST /v1/rerank with a fixed request built from the manifest's features (fixed-request.ts):
 *     200, no fallback, `x-model-version` the new version, every candidate back. Isolates pick
 *     the new model up one by one, so an older version answering is retried until the deadline;
 *     a fallback or an error status from the new model is a failure at once.
 *
 * Every loop is bounded by the deadline and every request by its own timeout, and both end at
 * once when `signal` aborts. Returns a result and never throws; the caller rolls the pointer back
 * when it did not pass.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { abSaltSetting } from "../../edge/env.ts";
import { modelSalt, type SaltState, saltState, userBucket } from "../../edge/model/ab-split.ts";
import type { ModelManifest } from "../../shared/manifest.ts";
import { fixedRequest } from "./fixed-request.ts";

export interface SmokeOptions {
  /** The worker's base URL, without a trailing slash. */
  url: string;
  /** The model that must serve (manifest id and version). */
  expected: { id: string; version: string };
  /** Its manifest: the fixed request is built from its features. */
  manifest: Pick<ModelManifest, "features">;
  /** The pointer it was published to. */
  pointer: "current" | "challenger";
  /** The whole test, both phases, ends by this deadline (ms). */
  timeoutMs: number;
  /** Between polls (ms). */
  pollMs: number;
  /** Bearer key for /v1/* when the worker has MTRANK_API_KEYS. */
  apiKey?: string;
  /** The worker's MTRANK_AB_SALT, when it has one: it picks the challenger's users. */
  abSalt?: string;
  /** One request's own limit (default 15 s, at most what is left of the deadline). */
  requestTimeoutMs?: number;
  /** Tests pass their own fetch. */
  fetch?: typeof fetch;
  /** One line per step for the run's log. */
  log?: (line: string) => void;
  /**
   * Ends the test at once, not passed (a cancelled CI job): its scheduler kills the process
   * seconds after the signal, too soon to wait for the worker, so the caller rolls back instead.
   */
  signal?: AbortSignal;
}

export interface SmokeResult {
  passed: boolean;
  /** One line: what served, or what went wrong. */
  detail: string;
  /** Seconds from the start until /v1/models listed the new model. */
  servedAfterS?: number;
  /** GET /v1/models requests made. */
  polls: number;
  /** The last POST /v1/rerank. */
  rerank?: {
    status: number;
    modelVersion?: string;
    fallback?: boolean;
    items?: number;
    ms: number;
  };
  /** Total seconds. */
  seconds: number;
}

interface ModelsBody {
  models?: { id?: unknown; version?: unknown; arm?: unknown }[];
}

interface RerankBody {
  fallback?: unknown;
  model?: { id?: unknown; version?: unknown };
  items?: unknown[];
}

/**
 * A user id the worker's A/B split (edge/model/ab-split.ts) sends to the challenger under `salt`
 * whatever the challenger's share: bucket 0 is in the challenger for any share above 0. The
 * champion's request carries no user id, which the champion serves whatever the share and salt.
 */
export function challengerUserId(salt: SaltState): string {
  // FNV-1a + murmur3's finaliser spreads ids evenly, so a hit comes within ~10,000 tries.
  for (let i = 0; i < 1_000_000; i++) {
    const id = `mtrank-smoke-${i}`;
    if (userBucket(id, salt) === 0) return id;
  }
  throw new Error("no user id found in the challenger's bucket");
}

export async function smokeTest(options: SmokeOptions): Promise<SmokeResult> {
  const started = performance.now();
  const deadline = started + options.timeoutMs;
  const doFetch = options.fetch ?? fetch;
  const log = options.log ?? (() => {});
  const arm = options.pointer === "challenger" ? "challenger" : "champion";
  const { id, version } = options.expected;
  const headers: Record<string, string> = options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {};
  let polls = 0;
  const elapsedS = () => (performance.now() - started) / 1000;
  const left = () => deadline - performance.now();
  /**
   * A request that failed once the deadline had passed was cut short by it (the last poll often
   * starts with a few ms left): what the last answer before it showed is kept in the detail.
   */
  const failedAtDeadline = (answer: string | undefined, failure: string) =>
    left() <= 0 && answer !== undefined ? `${answer}; then ${failure} at the deadline` : failure;
  const stop = options.signal;
  const withStop = (timeout: AbortSignal) => (stop ? AbortSignal.any([timeout, stop]) : timeout);
  const pause = (ms: number) => sleep(ms, undefined, stop ? { signal: stop } : {}).catch(() => undefined);
  const request = (path: string, init: RequestInit = {}) =>
    doFetch(`${options.url}${path}`, {
      ...init,
      headers: { ...headers, ...(init.headers as Record<string, string> | undefined) },
      signal: withStop(
        AbortSignal.timeout(Math.ceil(Math.max(1, Math.min(options.requestTimeoutMs ?? 15_000, left())))),
      ),
    });
  const result = (passed: boolean, detail: string, extra: Partial<SmokeResult> = {}): SmokeResult => ({
    passed,
    detail,
    polls,
    seconds: elapsedS(),
    ...extra,
  });

  /** The result once `signal` aborted, with what the test had seen by then. */
  const interrupted = (seen: string) =>
    result(
      false,
      `interrupted (${String(stop?.reason ?? "aborted")}) after ${elapsedS().toFixed(1)} s: ${seen}`,
    );

  // 1. GET /v1/models until the new model serves in its arm.
  let lastSeen = "no answer yet";
  /** What the last answer showed (lastSeen may be a failed request since). */
  let lastAnswer: string | undefined;
  let servedAfterS: number | undefined;
  while (left() > 0) {
    if (stop?.aborted) return interrupted(lastSeen);
    polls++;
    try {
      const response = await request("/v1/models");
      if (response.status === 401 || response.status === 403)
        return result(false, `GET /v1/models: ${response.status}: the API key was refused (smoke.apiKeyEnv)`);
      if (!response.ok) lastSeen = lastAnswer = `GET /v1/models: ${response.status}`;
      else {
        const body = (await response.json()) as ModelsBody;
        const models = Array.isArray(body.models) ? body.models : [];
        if (models.some((m) => m.id === id && m.version === version && m.arm === arm)) {
          servedAfterS = elapsedS();
          log(`smoke: ${id} ${version} serves as ${arm} after ${servedAfterS.toFixed(1)} s (${polls} polls)`);
          break;
        }
        lastSeen = lastAnswer = models.length
          ? `serving ${models.map((m) => `${String(m.id)} ${String(m.version)} (${String(m.arm)})`).join(", ")}`
          : "serving no model";
      }
    } catch (error) {
      // A request the signal cut short says nothing about the worker.
      if (!stop?.aborted) lastSeen = failedAtDeadline(lastAnswer, `GET /v1/models: ${describe(error)}`);
    }
    if (left() <= 0) break;
    await pause(Math.min(options.pollMs, Math.max(0, left())));
  }
  if (stop?.aborted && servedAfterS === undefined) return interrupted(lastSeen);
  if (servedAfterS === undefined) {
    const hint =
      arm === "challenger" ? " (the challenger is listed only while MTRANK_CHALLENGER_SHARE > 0)" : "";
    return result(
      false,
      `${id} ${version} did not serve as ${arm} within ${seconds(options.timeoutMs)} s: ${lastSeen}${hint}`,
    );
  }

  // 2. POST /v1/rerank with the fixed request, from a user the split sends to the arm: for the
  // challenger, salted as the worker salts it (MTRANK_AB_SALT, else the new model's identity).
  const fixed = fixedRequest(options.manifest);
  const operatorSalt = abSaltSetting({ MTRANK_AB_SALT: options.abSalt });
  const body = JSON.stringify(
    arm === "challenger"
      ? {
          ...fixed,
          user: {
            ...fixed.user,
            id: challengerUserId(saltState(operatorSalt ?? modelSalt({ id, version }))),
          },
        }
      : { ...fixed, user: { features: fixed.user.features } },
  );
  const candidates = (JSON.parse(body) as { candidates: unknown[] }).candidates.length;
  let rerank: SmokeResult["rerank"];
  let lastProblem = "";
  let lastRerankAnswer: string | undefined;
  while (left() > 0) {
    if (stop?.aborted)
      return { ...interrupted(lastProblem || "served, no /v1/rerank answered yet"), servedAfterS };
    const t0 = performance.now();
    try {
      const response = await request("/v1/rerank", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
      });
      const ms = performance.now() - t0;
      const modelVersion = response.headers.get("x-model-version") ?? undefined;
      if (response.status !== 200) {
        const text = (await response.text()).slice(0, 300).replace(/\s+/g, " ");
        rerank = { status: response.status, ...(modelVersion ? { modelVersion } : {}), ms };
        return result(false, `POST /v1/rerank: ${response.status}: ${text}`, { servedAfterS, rerank });
      }
      const answer = (await response.json()) as RerankBody;
      const items = Array.isArray(answer.items) ? answer.items.length : 0;
      const fallback = answer.fallback === true;
      rerank = { status: 200, ...(modelVersion ? { modelVersion } : {}), fallback, items, ms };
      if (modelVersion === version) {
        if (fallback)
          return result(
            false,
            `POST /v1/rerank: ${id} ${version} fell back to the input order (x-mtrank-fallback): the model does not load or run in the worker`,
            { servedAfterS, rerank },
          );
        if (answer.model?.id !== id)
          return result(false, `POST /v1/rerank: model id ${String(answer.model?.id)}, expected ${id}`, {
            servedAfterS,
            rerank,
          });
        if (items !== candidates)
          return result(false, `POST /v1/rerank: ${items} items for ${candidates} candidates`, {
            servedAfterS,
            rerank,
          });
        log(`smoke: POST /v1/rerank answered by ${version}, ${items} items in ${ms.toFixed(0)} ms`);
        return result(
          true,
          `${id} ${version} serves as ${arm}; /v1/rerank: 200, ${items} items, no fallback`,
          {
            servedAfterS,
            rerank,
          },
        );
      }
      // Another isolate still on the previous model: wait for it to catch up.
      lastProblem = lastRerankAnswer = `x-model-version ${modelVersion ?? "(none)"}, expected ${version}`;
    } catch (error) {
      if (!stop?.aborted)
        lastProblem = failedAtDeadline(lastRerankAnswer, `POST /v1/rerank: ${describe(error)}`);
    }
    if (left() <= 0) break;
    await pause(Math.min(options.pollMs, Math.max(0, left())));
  }
  if (stop?.aborted)
    return { ...interrupted(lastProblem || "served, no /v1/rerank answered yet"), servedAfterS };
  return result(false, `POST /v1/rerank within ${seconds(options.timeoutMs)} s: ${lastProblem}`, {
    servedAfterS,
    ...(rerank ? { rerank } : {}),
  });
}

/** 0.3, 12.5, 120: a tenth of a second where that matters. */
function seconds(ms: number): string {
  return ms < 10_000 ? (ms / 1000).toFixed(1) : (ms / 1000).toFixed(0);
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const cause = (error as { cause?: unknown }).cause;
    const why = cause instanceof Error ? `: ${cause.message}` : "";
    return `${error.name === "TimeoutError" ? "timed out" : error.message}${why}`;
  }
  return String(error);
}
