/** The worker's bindings: configuration from wrangler.toml [vars], secrets, and R2/KV bindings. */
import type { RequestLogFields } from "./log.ts";

/**
 * The R2 and KV calls the worker makes, typed here (no @cloudflare/workers-types in this
 * project): an R2 bucket of model directories and a KV namespace of pointers (model/store.ts).
 */
export interface R2ObjectBody {
  /** Bytes in the object, known before its body is read (checked against the caps in model/remote.ts). */
  size: number;
  arrayBuffer(): Promise<ArrayBuffer>;
  text(): Promise<string>;
  /** The body as a stream: cancelled when the object is refused unread, so nothing holds it open. */
  body?: ReadableStream;
}
export interface R2BucketReader {
  get(key: string): Promise<R2ObjectBody | null>;
}
export interface KvReader {
  get(key: string): Promise<string | null>;
}

export interface EdgeEnv {
  /** Secret: comma-separated API keys. When set, /v1/* needs `Authorization: Bearer <key>`. */
  MTRANK_API_KEYS?: string;
  /** Comma-separated origins allowed by CORS (e.g. "https://shop.example"); "*" allows any. */
  MTRANK_CORS_ORIGINS?: string;
  /** Optional R2 bucket of model directories; with MTRANK_MODEL_POINTERS it replaces the bundled model. */
  MTRANK_MODELS?: R2BucketReader;
  /** Optional KV namespace: `models/current` and `models/challenger` name prefixes in MTRANK_MODELS. */
  MTRANK_MODEL_POINTERS?: KvReader;
  /**
   * "int8" serves each R2 model directory's model.int8.onnx (and its factorised int8 graph),
   * verified like model.onnx; default "float32". The integer int8 form runs at about half the
   * float32 time in onnxruntime-web (npm run bench:int8).
   */
  MTRANK_MODEL_WEIGHTS?: string;
  /** Seconds between reads of the KV pointers (default 60). */
  MTRANK_MODEL_REFRESH_S?: string;
  /**
   * Largest .onnx file, in bytes, the worker downloads from MTRANK_MODELS (default 12582912,
   * 12 MiB). R2's declared size is checked before the body is read; a larger graph is refused and
   * the previous model keeps serving. A Worker isolate has 128 MB of memory in all, and loading a
   * graph takes 2.5–3.6 times its size there (edge/model/remote.ts DEFAULT_MODEL_MAX_BYTES).
   */
  MTRANK_MODEL_MAX_BYTES?: string;
  /**
   * Largest manifest.json, in bytes, the worker downloads from MTRANK_MODELS (default 8388608,
   * 8 MiB). The manifest holds each id feature's vocabulary, about 30–35 bytes an entry; larger is
   * refused before the body is read and the previous model keeps serving.
   */
  MTRANK_MANIFEST_MAX_BYTES?: string;
  /** Percentage (0-100) of user ids the challenger model serves (default 0). */
  MTRANK_CHALLENGER_SHARE?: string;
  /**
   * The A/B split's salt (ab-split.ts): unset, the challenger model's id and version, so each new
   * challenger draws its users afresh. Set, it replaces them: one assignment across challenger
   * versions, or a deliberate reshuffle when changed.
   */
  MTRANK_AB_SALT?: string;
  /** CDN proxy mode: a JSON object (or its JSON text) as in proxy/config.ts; absent = off. */
  MTRANK_PROXY?: unknown;
  /**
   * Secret: comma-separated keys that sign visitor ids in proxy mode (`user.signed`); an id is
   * accepted when its HMAC-SHA256 under any of them matches, so keys can be rotated.
   */
  MTRANK_VISITOR_KEY?: string;
}

export type EdgeBindings = { Bindings: EdgeEnv; Variables: { log: RequestLogFields } };

export function listSetting(value: string | undefined): string[] {
  return (value ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

export type NumberSettingName =
  | "MTRANK_MODEL_REFRESH_S"
  | "MTRANK_CHALLENGER_SHARE"
  | "MTRANK_MODEL_MAX_BYTES"
  | "MTRANK_MANIFEST_MAX_BYTES";

/** A numeric var within [min, max]; absent -> `fallback`; anything else is a configuration error. */
export function numberSetting(
  env: EdgeEnv | undefined,
  name: NumberSettingName,
  fallback: number,
  min: number,
  max: number,
): number {
  const raw = env?.[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min || value > max)
    throw new Error(`${name} must be a number in [${min}, ${max}], got "${raw}"`);
  return value;
}

/** MTRANK_AB_SALT longer than this is a paste error (a key, a file), not an experiment's name. */
export const AB_SALT_MAX_LENGTH = 256;

/**
 * MTRANK_AB_SALT, trimmed; absent, empty or only whitespace -> undefined (the challenger model's
 * identity salts the split). Anything but a string of at most AB_SALT_MAX_LENGTH characters is a
 * configuration error; the message gives its type or length, not the value.
 */
export function abSaltSetting(env: EdgeEnv | undefined): string | undefined {
  const raw: unknown = env?.MTRANK_AB_SALT;
  if (raw === undefined) return undefined;
  if (typeof raw !== "string")
    throw new Error(`MTRANK_AB_SALT must be a string, got ${raw === null ? "null" : typeof raw}`);
  const salt = raw.trim();
  if (salt.length > AB_SALT_MAX_LENGTH)
    throw new Error(`MTRANK_AB_SALT must be at most ${AB_SALT_MAX_LENGTH} characters, got ${salt.length}`);
  return salt === "" ? undefined : salt;
}
