/**
 * A Registry on Cloudflare: the R2 bucket through its S3-compatible API (@aws-sdk/client-s3) and
 * the KV pointers through Cloudflare's REST API.
 *
 * Credentials come from the environment only and stay in memory (the S3 client's signer and the
 * KV calls' Authorization header): nothing here writes them to disk, puts them in an error
 * message or in `describe`.
 *
 *   R2_ACCESS_KEY_ID, R2_SECRET_ACCESS_KEY   an R2 API token's S3 credentials (Object Read & Write on the bucket)
 *   CLOUDFLARE_ACCOUNT_ID                    the account holding the bucket and the namespace
 *   CLOUDFLARE_API_TOKEN                     an API token with Workers KV Storage: Edit
 *   MTRANK_MODEL_POINTERS_ID                 the KV namespace id, unless options.namespaceId gives it
 *
 * The endpoints are options so tests can point both clients at a local server.
 */
import {
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from "@aws-sdk/client-s3";
import type { PointerName, Registry, StoredObject } from "../contracts.ts";
import { DEFAULT_BUCKET } from "./keys.ts";

/** The environment variables a remote registry reads. */
export const REMOTE_ENV = {
  accessKeyId: "R2_ACCESS_KEY_ID",
  secretAccessKey: "R2_SECRET_ACCESS_KEY",
  accountId: "CLOUDFLARE_ACCOUNT_ID",
  apiToken: "CLOUDFLARE_API_TOKEN",
  namespaceId: "MTRANK_MODEL_POINTERS_ID",
} as const;

/** Cloudflare's REST API root. */
export const CLOUDFLARE_API = "https://api.cloudflare.com/client/v4";

/** Default limit on one HTTP request to R2 or to the KV API. */
export const DEFAULT_TIMEOUT_MS = 60_000;

/** A remote registry's configuration is incomplete: the message names what is missing. */
export class RegistryConfigError extends Error {
  override name = "RegistryConfigError";
}

export interface RemoteRegistryOptions {
  /** The R2 bucket the worker's MTRANK_MODELS binding names (`bucket_name`). Default DEFAULT_BUCKET. */
  bucket?: string;
  /**
   * The id of the KV namespace the worker's MTRANK_MODEL_POINTERS binding names (`id`, 32 hex
   * digits). Default: the MTRANK_MODEL_POINTERS_ID environment variable.
   */
  namespaceId?: string;
  /** Where the credentials and ids are read; default process.env. Tests pass their own. */
  env?: Record<string, string | undefined>;
  /** R2's S3 endpoint; default `https://<CLOUDFLARE_ACCOUNT_ID>.r2.cloudflarestorage.com`. */
  s3Endpoint?: string;
  /** Cloudflare's API root for the KV calls; default CLOUDFLARE_API. */
  apiBase?: string;
  /** Limit on each HTTP request, in milliseconds; default DEFAULT_TIMEOUT_MS. */
  timeoutMs?: number;
}

/** Cloudflare's API error code for a KV key that does not exist. */
const KEY_NOT_FOUND = 10009;
/** Tries of a KV call that failed on the network, with a 429 or with a 5xx. */
const KV_ATTEMPTS = 3;
/** Tries of a conditional put that R2 answered 409 (a concurrent conditional write on the key). */
const CONFLICT_ATTEMPTS = 4;

/** A Registry on Cloudflare R2 (S3 API) + KV (REST API); close() releases the HTTP connections. */
export class RemoteRegistry implements Registry {
  readonly describe: string;
  /** The R2 bucket written (options.bucket). */
  readonly bucket: string;
  /** The KV namespace id written (options.namespaceId or MTRANK_MODEL_POINTERS_ID). */
  readonly namespaceId: string;
  readonly #s3: S3Client;
  readonly #kvBase: string;
  readonly #apiToken: string;
  readonly #timeoutMs: number;

  constructor(options: RemoteRegistryOptions = {}) {
    const env = options.env ?? process.env;
    const missing: string[] = [];
    const read = (name: string): string => {
      const value = env[name];
      if (value === undefined || value.trim() === "") missing.push(name);
      return value?.trim() ?? "";
    };
    const accessKeyId = read(REMOTE_ENV.accessKeyId);
    const secretAccessKey = read(REMOTE_ENV.secretAccessKey);
    const accountId = read(REMOTE_ENV.accountId);
    const apiToken = read(REMOTE_ENV.apiToken);
    const namespaceId = options.namespaceId ?? read(REMOTE_ENV.namespaceId);
    // One error naming every missing variable: fixing them one run at a time is a slow loop.
    if (missing.length > 0)
      throw new RegistryConfigError(
        `remote registry: set ${missing.join(", ")} in the environment (${missing.length === 1 ? "it is" : "they are"} missing or empty)`,
      );
    this.bucket = options.bucket ?? DEFAULT_BUCKET;
    this.namespaceId = namespaceId;
    this.describe = `r2:${this.bucket}`;
    this.#apiToken = apiToken;
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const apiBase = (options.apiBase ?? CLOUDFLARE_API).replace(/\/+$/, "");
    this.#kvBase = `${apiBase}/accounts/${encodeURIComponent(accountId)}/storage/kv/namespaces/${encodeURIComponent(namespaceId)}/values/`;
    this.#s3 = new S3Client({
      // R2 has one region, "auto"; the SDK requires some region to sign with.
      region: "auto",
      endpoint: options.s3Endpoint ?? `https://${accountId}.r2.cloudflarestorage.com`,
      // Path-style URLs (<endpoint>/<bucket>/<key>) work on R2 and on any local endpoint, where
      // virtual-host names (<bucket>.<endpoint>) would not resolve.
      forcePathStyle: true,
      credentials: { accessKeyId, secretAccessKey },
      // The SDK's default (WHEN_SUPPORTED) adds its flexible checksums to every upload and checks
      // them on downloads; S3-compatible stores have not always accepted the newer ones, and
      // nothing here needs them: publish.ts reads every object back and compares its sha256.
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
      requestHandler: { connectionTimeout: this.#timeoutMs, requestTimeout: this.#timeoutMs },
    });
  }

  async get(key: string): Promise<StoredObject | undefined> {
    try {
      const out = await this.#s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      const bytes = out.Body ? await out.Body.transformToByteArray() : new Uint8Array();
      return { bytes, etag: unquote(out.ETag ?? "") };
    } catch (error) {
      // NoSuchKey only: a 404 NoSuchBucket is a misconfiguration, not an absent object.
      if (error instanceof S3ServiceException && error.name === "NoSuchKey") return undefined;
      throw s3Error(`get ${key}`, error);
    }
  }

  async put(key: string, bytes: Uint8Array, options: { ifAbsent?: boolean } = {}): Promise<boolean> {
    const input = { Bucket: this.bucket, Key: key, Body: bytes };
    if (!options.ifAbsent) {
      try {
        await this.#s3.send(new PutObjectCommand(input));
        return true;
      } catch (error) {
        throw s3Error(`put ${key}`, error);
      }
    }
    for (let attempt = 1; ; attempt++) {
      try {
        // If-None-Match: * — R2 writes only when no object has the key, atomically, and answers
        // 412 Precondition Failed otherwise.
        await this.#s3.send(new PutObjectCommand({ ...input, IfNoneMatch: "*" }));
        return true;
      } catch (error) {
        const status = httpStatus(error);
        if (status === 412) {
          // The SDK retries a request that failed on the network; if the first try had landed,
          // the retry finds that object and gets 412. The same bytes there mean it is this call's.
          return retriedBySdk(error) && (await this.#holds(key, bytes));
        }
        // 409: another conditional write to the key was in flight; S3's documented answer is to retry.
        if (status === 409 && attempt < CONFLICT_ATTEMPTS) {
          await new Promise((done) => setTimeout(done, 100 * attempt));
          continue;
        }
        throw s3Error(`put ${key} (if absent)`, error);
      }
    }
  }

  async delete(key: string): Promise<void> {
    // S3 answers 204 whether or not the key existed, so deleting is idempotent as it is.
    try {
      await this.#s3.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
    } catch (error) {
      throw s3Error(`delete ${key}`, error);
    }
  }

  async list(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    let token: string | undefined;
    do {
      try {
        const page = await this.#s3.send(
          new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }),
        );
        for (const object of page.Contents ?? []) if (object.Key !== undefined) keys.push(object.Key);
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } catch (error) {
        throw s3Error(`list ${prefix}`, error);
      }
    } while (token !== undefined);
    return keys;
  }

  async getPointer(name: PointerName): Promise<string | undefined> {
    const response = await this.#kv("GET", name);
    if (response.status === 404) return undefined;
    return response.text();
  }

  async setPointer(name: PointerName, prefix: string): Promise<void> {
    await this.#kv("PUT", name, prefix);
  }

  async deletePointer(name: PointerName): Promise<void> {
    await this.#kv("DELETE", name);
  }

  /** Closes the S3 client's pooled connections. */
  async close(): Promise<void> {
    this.#s3.destroy();
  }

  async #holds(key: string, bytes: Uint8Array): Promise<boolean> {
    const object = await this.get(key);
    return object !== undefined && Buffer.from(object.bytes).equals(bytes);
  }

  /**
   * One KV REST call, tried again on a network error, 429 or 5xx (all three calls are idempotent);
   * a 404 is returned for the caller to read, any other failure throws with Cloudflare's messages.
   */
  async #kv(method: "GET" | "PUT" | "DELETE", name: PointerName, body?: string): Promise<Response> {
    // The key is one path segment: its "/" must be escaped (models%2Fcurrent), as wrangler does.
    const url = `${this.#kvBase}${encodeURIComponent(name)}`;
    const what = `KV ${method} ${name}`;
    for (let attempt = 1; ; attempt++) {
      let response: Response;
      try {
        response = await fetch(url, {
          method,
          headers: { authorization: `Bearer ${this.#apiToken}` },
          ...(body === undefined ? {} : { body }),
          signal: AbortSignal.timeout(this.#timeoutMs),
        });
      } catch (error) {
        if (attempt < KV_ATTEMPTS) {
          await new Promise((done) => setTimeout(done, 200 * attempt));
          continue;
        }
        throw new Error(`remote registry: ${what} failed: ${describeError(error)}`, { cause: error });
      }
      if (response.ok) return response;
      if (response.status === 404 && method !== "PUT") {
        // GET: no such key; DELETE: already gone. Either is an answer, not a failure, unless
        // Cloudflare says something else was not found (a wrong namespace id must not read as
        // "no pointer").
        const errors = await apiErrors(response);
        if (
          errors.length === 0 ||
          errors.some((e) => e.code === KEY_NOT_FOUND || /key not found/i.test(e.message))
        )
          return new Response(null, { status: 404 });
        throw new Error(`remote registry: ${what}: HTTP 404: ${errors.map((e) => e.message).join("; ")}`);
      }
      if ((response.status === 429 || response.status >= 500) && attempt < KV_ATTEMPTS) {
        await response.body?.cancel();
        await new Promise((done) => setTimeout(done, 200 * attempt));
        continue;
      }
      throw new Error(`remote registry: ${what}: HTTP ${response.status}${await apiMessages(response)}`);
    }
  }
}

/** A RemoteRegistry; throws RegistryConfigError naming any missing environment variable. */
export function remoteRegistry(options: RemoteRegistryOptions = {}): RemoteRegistry {
  return new RemoteRegistry(options);
}

function httpStatus(error: unknown): number | undefined {
  return error instanceof S3ServiceException ? error.$metadata.httpStatusCode : undefined;
}

function retriedBySdk(error: unknown): boolean {
  return error instanceof S3ServiceException && (error.$metadata.attempts ?? 1) > 1;
}

function s3Error(what: string, error: unknown): Error {
  const status = httpStatus(error);
  return new Error(`remote registry: R2 ${what}: ${status ? `HTTP ${status} ` : ""}${describeError(error)}`, {
    cause: error,
  });
}

function describeError(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}

/** S3 sends ETags quoted ("abc"); R2's binding and StoredObject use the bare value. */
function unquote(etag: string): string {
  return etag.replace(/^W\//, "").replace(/^"(.*)"$/, "$1");
}

/** ": <message>; <message>" from a Cloudflare API error body, or its text shortened, or "". */
async function apiMessages(response: Response): Promise<string> {
  const text = await response.text().catch(() => "");
  const errors = parseErrors(text);
  if (errors.length > 0) return `: ${errors.map((e) => e.message).join("; ")}`;
  return text ? `: ${text.slice(0, 200)}` : "";
}

async function apiErrors(response: Response): Promise<{ code?: number; message: string }[]> {
  return parseErrors(await response.text().catch(() => ""));
}

/** The `errors` of a Cloudflare API body ({ success, errors: [{ code, message }] }); [] if none or not JSON. */
function parseErrors(text: string): { code?: number; message: string }[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return [];
  }
  const errors = typeof parsed === "object" && parsed !== null ? (parsed as { errors?: unknown }).errors : [];
  if (!Array.isArray(errors)) return [];
  return errors.flatMap((e: unknown) => {
    if (typeof e !== "object" || e === null) return [];
    const { code, message } = e as { code?: unknown; message?: unknown };
    if (typeof message !== "string") return [];
    return typeof code === "number" ? [{ code, message }] : [{ message }];
  });
}
