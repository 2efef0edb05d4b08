/**
 * The worker's API keys (the MTRANK_API_KEYS secret, comma-separated), checked once per distinct
 * value. A key must be what a Bearer token can carry, as Hono's bearer-auth reads it: letters,
 * digits and `-._~+/`, optionally followed by `=` padding. A key outside that can never match a
 * request, so it is left out and logged (never the key itself). Keys set but none usable is a
 * misconfiguration, and the API answers 503 rather than opening up.
 */
import { listSetting } from "../env.ts";
import { logLine } from "../log.ts";

/** Hono's bearer-auth token syntax (hono/dist/middleware/bearer-auth TOKEN_STRINGS). */
export const API_KEY_PATTERN = /^[A-Za-z0-9._~+/-]+=*$/;

export type AuthMode = "api-key" | "open" | "misconfigured";

/** Keys shorter than this are logged as guessable at start-up (they still work). */
export const MIN_KEY_LENGTH = 16;

export interface ApiKeys {
  mode: AuthMode;
  /** The usable keys (empty unless mode is "api-key"). */
  keys: readonly string[];
  /** Every configured value, usable or not: none of them may reach an origin server. */
  secrets: readonly string[];
}

const checked = new Map<string, ApiKeys>();

export function apiKeys(raw: string | undefined): ApiKeys {
  const value = raw ?? "";
  let result = checked.get(value);
  if (!result) {
    result = check(value);
    // One entry per distinct secret value: a deployment has one, a test a handful.
    checked.set(value, result);
  }
  return result;
}

function check(raw: string): ApiKeys {
  const secrets = listSetting(raw);
  const keys = secrets.filter((k) => API_KEY_PATTERN.test(k));
  const unusable = secrets
    .map((k, i) => (API_KEY_PATTERN.test(k) ? -1 : i + 1))
    .filter((position) => position > 0);
  if (unusable.length > 0)
    logLine("error", "config.invalid", {
      error:
        `MTRANK_API_KEYS: key ${unusable.join(", ")} (of ${secrets.length}) has characters a Bearer token ` +
        "cannot carry; keys may use letters, digits and -._~+/ with trailing = padding",
    });
  // A short key can be guessed by anyone who can reach the worker: still used (refusing it would
  // open nothing and break a running deployment), but said once, by position, never the key.
  const short = secrets
    .map((k, i) => (API_KEY_PATTERN.test(k) && k.length < MIN_KEY_LENGTH ? i + 1 : -1))
    .filter((position) => position > 0);
  if (short.length > 0)
    logLine("warn", "auth.short_key", {
      detail:
        `MTRANK_API_KEYS: key ${short.join(", ")} (of ${secrets.length}) is under ${MIN_KEY_LENGTH} characters ` +
        "and can be guessed; use random keys of 32 or more (openssl rand -base64 32)",
    });
  const mode: AuthMode = secrets.length === 0 ? "open" : keys.length > 0 ? "api-key" : "misconfigured";
  if (mode === "open")
    logLine("warn", "auth.open", { detail: "MTRANK_API_KEYS is not set: anyone can call /v1/*" });
  return { mode, keys, secrets };
}
