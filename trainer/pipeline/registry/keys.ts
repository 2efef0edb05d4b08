/**
 * The registry's key layout, in one place so publish, gc, lock and history agree on it:
 *
 *   models/<sha256 of manifest.json>/manifest.json + the files it lists   (publish.ts)
 *   locks/pipeline                                                         (lock.ts)
 *   runs/<ISO time>-<run id>.json                                          (history.ts)
 *   intents/flip: a run's flip not yet seen through                       (../intent.ts)
 *
 * and KV `models/current` / `models/challenger` holding a `models/<sha256>/` prefix.
 */
import { createHash } from "node:crypto";
import type { PointerName } from "../contracts.ts";

/**
 * The bucket name both registries write by default: wrangler.toml's (commented) `bucket_name`
 * for MTRANK_MODELS.
 */
export const DEFAULT_BUCKET = "mtrank-models";

/**
 * The KV namespace id the local registry writes by default. Locally any string names a
 * namespace; it must equal the id (or preview_id) the worker's wrangler config gives
 * MTRANK_MODEL_POINTERS. Cloudflare's ids are 32 hex digits, so the remote registry has no default.
 */
export const DEFAULT_NAMESPACE_ID = "mtrank-pointers";

/** Every model directory lives under this prefix. */
export const MODELS_PREFIX = "models/";

/** The KV pointers the worker reads (edge/model/catalog.ts): gc keeps whatever they name. */
export const POINTER_NAMES: readonly PointerName[] = ["models/current", "models/challenger"];

/** A content-addressed model prefix: the only shape publish writes and gc deletes. */
const MODEL_PREFIX = /^models\/[0-9a-f]{64}\/$/;

/** Lower-case hex sha256 of `bytes`. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** `models/<hash>/` for a manifest.json whose bytes hash to `hash`. */
export function modelPrefix(manifestSha256: string): string {
  return `${MODELS_PREFIX}${manifestSha256}/`;
}

/** Whether `prefix` is exactly `models/<64 hex>/`. */
export function isModelPrefix(prefix: string): boolean {
  return MODEL_PREFIX.test(prefix);
}

/**
 * `prefix` with its trailing slash: records and hand-set pointers may omit it, and the worker
 * (edge/model/remote.ts) accepts both, so comparisons must not tell them apart.
 */
export function normalizePrefix(prefix: string): string {
  return prefix.endsWith("/") ? prefix : `${prefix}/`;
}

/** The model prefix a key under models/ belongs to (`models/<x>/`), or undefined for other keys. */
export function prefixOfKey(key: string): string | undefined {
  if (!key.startsWith(MODELS_PREFIX)) return undefined;
  const slash = key.indexOf("/", MODELS_PREFIX.length);
  return slash < 0 ? undefined : key.slice(0, slash + 1);
}
