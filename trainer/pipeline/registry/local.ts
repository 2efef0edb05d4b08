/**
 * A Registry over wrangler's local R2/KV state: the folder `wrangler dev --persist-to <dir>`
 * serves from, so a worker started with
 *
 *   npx wrangler dev --persist-to <dir>
 *
 * and a wrangler config declaring
 *
 *   [[r2_buckets]]
 *   binding = "MTRANK_MODELS"
 *   bucket_name = "mtrank-models"     # `bucket` here (wrangler dev uses preview_bucket_name when set)
 *   [[kv_namespaces]]
 *   binding = "MTRANK_MODEL_POINTERS"
 *   id = "mtrank-pointers"            # `namespaceId` here (wrangler dev uses preview_id when set)
 *
 * serves what the pipeline publishes. The state is opened the way wrangler's own local commands
 * open it (`wrangler r2 object put --local`, `wrangler kv key put --local`): a Miniflare whose
 * resourcePersistencePath is `<persist-to>/v3`, with the bucket and namespace bound under their
 * names. workerd keeps R2 under `<persist-to>/v3/r2/<bucket>` and KV under
 * `<persist-to>/v3/kv/<namespace id>`, with SQLite metadata beside them.
 *
 * Miniflare starts one workerd process (about 0.7-0.9 s) on first use and keeps it until close();
 * each call is then about 15 ms (publishing the fixture model and reading it back: 0.2 s). The
 * wrangler CLI starts one per call: 2-3.5 s each. miniflare is pinned to the version wrangler
 * depends on (test/pipeline/registry-local.test.ts checks), so both read and write one format.
 */
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { Miniflare } from "miniflare";
import type { PointerName, Registry, StoredObject } from "../contracts.ts";
import { DEFAULT_BUCKET, DEFAULT_NAMESPACE_ID } from "./keys.ts";

export { DEFAULT_BUCKET, DEFAULT_NAMESPACE_ID };

/** Where `wrangler dev` keeps its state without --persist-to, relative to the wrangler config's folder. */
export const DEFAULT_PERSIST_TO = ".wrangler/state";

export interface LocalRegistryOptions {
  /**
   * The folder given to `wrangler dev --persist-to` (relative paths resolve against the working
   * directory, as wrangler resolves them). Without --persist-to, wrangler dev uses
   * `<folder of wrangler.toml>/.wrangler/state` (DEFAULT_PERSIST_TO).
   */
  persistTo: string;
  /**
   * The R2 bucket name the worker's config binds to MTRANK_MODELS: its `preview_bucket_name`
   * when it has one, else its `bucket_name` (wrangler dev binds the preview names locally).
   * Default DEFAULT_BUCKET.
   */
  bucket?: string;
  /**
   * The KV namespace id the worker's config binds to MTRANK_MODEL_POINTERS: its `preview_id`
   * when it has one, else its `id`. Default DEFAULT_NAMESPACE_ID.
   */
  namespaceId?: string;
  /** How long one try of a call may take before a fresh workerd tries again (CALL_TIMEOUT_MS). */
  callTimeoutMs?: number;
  /**
   * Told of every try that failed and is tried again (a call's or the start's): what failed, why,
   * and whether a fresh workerd takes over. A run's log shows where local state was slow.
   */
  log?: (line: string) => void;
}

/**
 * The R2 and KV binding calls made here. miniflare types its bindings with
 * @cloudflare/workers-types, which this project does not install (edge/env.ts types the
 * worker's side the same way), so they are declared here and the proxies cast to them.
 */
interface Bucket {
  get(key: string): Promise<{ etag: string; arrayBuffer(): Promise<ArrayBuffer> } | null>;
  put(
    key: string,
    value: Uint8Array,
    options?: { onlyIf?: { etagDoesNotMatch?: string } },
  ): Promise<{ key: string } | null>;
  delete(key: string): Promise<void>;
  list(options: {
    prefix: string;
    cursor?: string;
  }): Promise<{ objects: { key: string }[]; truncated: boolean; cursor?: string }>;
}
interface Namespace {
  get(key: string): Promise<string | null>;
  put(key: string, value: string): Promise<void>;
  delete(key: string): Promise<void>;
}

interface Opened {
  mf: Miniflare;
  bucket: Bucket;
  kv: Namespace;
}

/**
 * How many times a call is tried. Two workerd processes on one state folder (this registry and
 * a running `wrangler dev`, or two pipeline runs) share its SQLite files, and a write that meets
 * the other's transaction fails with SQLITE_BUSY ("Unspecified error" from R2); trying again a
 * moment later succeeds. Starting both at the same instant fails the same way.
 */
const ATTEMPTS = 5;
const RETRY_DELAY_MS = 50;
/**
 * How long one try may take (a call takes ~15 ms; a start ~1 s, more on a loaded host) before
 * the registry's workerd is stopped and a fresh one tries again. workerd has crashed on SQLite
 * contention with another process on the same state (workers-sdk #14916, #15538): a nightly run
 * must fail with a reason, or go on, not wait forever holding the pipeline's lock. (A workerd
 * stopped outright still blocks: miniflare's binding proxies read properties synchronously.)
 */
export const CALL_TIMEOUT_MS = 20_000;
export const START_TIMEOUT_MS = 60_000;

/** A Registry over `wrangler dev --persist-to` state; close() stops its workerd process. */
export class LocalRegistry implements Registry {
  readonly describe: string;
  /** Absolute `<persist-to>` folder. */
  readonly persistTo: string;
  /** The R2 bucket written (options.bucket). */
  readonly bucketName: string;
  /** The KV namespace id written (options.namespaceId). */
  readonly namespaceId: string;
  #opened: Promise<Opened> | undefined;
  readonly #callTimeoutMs: number;
  readonly #log: (line: string) => void;

  constructor(options: LocalRegistryOptions) {
    this.persistTo = resolve(options.persistTo);
    this.bucketName = options.bucket ?? DEFAULT_BUCKET;
    this.namespaceId = options.namespaceId ?? DEFAULT_NAMESPACE_ID;
    this.describe = `local:${this.persistTo}`;
    this.#callTimeoutMs = options.callTimeoutMs ?? CALL_TIMEOUT_MS;
    this.#log = options.log ?? (() => {});
  }

  get(key: string): Promise<StoredObject | undefined> {
    return this.#call(`get ${key}`, async ({ bucket }) => {
      const object = await bucket.get(key);
      if (!object) return undefined;
      return { bytes: new Uint8Array(await object.arrayBuffer()), etag: object.etag };
    });
  }

  async put(key: string, bytes: Uint8Array, options: { ifAbsent?: boolean } = {}): Promise<boolean> {
    if (!options.ifAbsent) {
      await this.#call(`put ${key}`, ({ bucket }) => bucket.put(key, bytes));
      return true;
    }
    // etagDoesNotMatch "*" is R2's "only if no object has this key": workerd checks and writes in
    // one transaction of the bucket's Durable Object, so of concurrent writers exactly one wins
    // (test/pipeline/registry-local.test.ts), and put resolves null for the others.
    let tries = 0;
    return this.#call(`put ${key}`, async ({ bucket }) => {
      const retry = tries++ > 0;
      const written = await bucket.put(key, bytes, { onlyIf: { etagDoesNotMatch: "*" } });
      if (written) return true;
      // An earlier try that failed or ran out of time may have committed all the same: the same
      // bytes there mean this call's write is the one that landed.
      return retry && (await holds(bucket, key, bytes));
    });
  }

  async delete(key: string): Promise<void> {
    await this.#call(`delete ${key}`, ({ bucket }) => bucket.delete(key));
  }

  async list(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    let cursor: string | undefined;
    // R2 returns at most 1000 keys a page, in key order; the cursor continues where it stopped.
    do {
      const page = await this.#call(`list ${prefix}`, ({ bucket }) =>
        bucket.list(cursor === undefined ? { prefix } : { prefix, cursor }),
      );
      for (const object of page.objects) keys.push(object.key);
      cursor = page.truncated ? page.cursor : undefined;
    } while (cursor !== undefined);
    return keys;
  }

  async getPointer(name: PointerName): Promise<string | undefined> {
    return (await this.#call(`KV get ${name}`, ({ kv }) => kv.get(name))) ?? undefined;
  }

  async setPointer(name: PointerName, prefix: string): Promise<void> {
    await this.#call(`KV put ${name}`, ({ kv }) => kv.put(name, prefix));
  }

  async deletePointer(name: PointerName): Promise<void> {
    await this.#call(`KV delete ${name}`, ({ kv }) => kv.delete(name));
  }

  /** Stops the workerd process; the registry opens a new one if called again. */
  async close(): Promise<void> {
    const opened = this.#opened;
    this.#opened = undefined;
    if (!opened) return;
    const { mf } = await opened.catch(() => ({ mf: undefined }));
    await mf?.dispose();
  }

  /**
   * `call` on the open workerd, tried again on failure (see ATTEMPTS); only for calls that are
   * safe to repeat. A try that runs out of time, or finds its workerd gone, stops that workerd:
   * the next try starts a fresh one.
   */
  async #call<T>(what: string, call: (opened: Opened) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      // The start has tries and a time limit of its own: its failure ends the call.
      const opening = this.#open();
      const opened = await opening;
      try {
        return await withTimeout(
          call(opened),
          this.#callTimeoutMs,
          `did not answer within ${this.#callTimeoutMs / 1000} s`,
        );
      } catch (error) {
        if (attempt >= ATTEMPTS) throw callError(what, error);
        const fresh = error instanceof CallTimeout || isGone(error);
        if (fresh) this.#restart(opening);
        this.#retrying(what, attempt, error, fresh);
        await sleep(RETRY_DELAY_MS * attempt);
      }
    }
  }

  #retrying(what: string, attempt: number, error: unknown, fresh: boolean): void {
    const reason = error instanceof Error ? error.message : String(error);
    this.#log(
      `local registry: ${what}: try ${attempt} of ${ATTEMPTS} failed (${reason}); trying again${fresh ? " on a fresh workerd" : ""}`,
    );
  }

  /** Drops `opening` (if still current) and stops its workerd in the background. */
  #restart(opening: Promise<Opened>): void {
    if (this.#opened !== opening) return;
    this.#opened = undefined;
    void opening.then(
      ({ mf }) => mf.dispose().catch(() => undefined),
      () => undefined,
    );
  }

  /** The workerd process, started on first use: constructing a registry costs nothing. */
  #open(): Promise<Opened> {
    this.#opened ??= this.#start().catch((error: unknown) => {
      // A failed start is not cached: the next call tries again.
      this.#opened = undefined;
      throw error;
    });
    return this.#opened;
  }

  async #start(): Promise<Opened> {
    const { convertV4MiniflareOptions, Miniflare } = await loadMiniflare();
    // A misspelt persistTo opens a new, empty registry, which reads as a first run: say so once.
    if (!existsSync(resolve(this.persistTo, "v3")))
      this.#log(
        `local registry: ${this.persistTo} holds no wrangler state yet; starting an empty registry there (check registry.local.persistTo if one was expected)`,
      );
    for (let attempt = 1; ; attempt++) {
      const handlers = signalListeners();
      const mf = new Miniflare(
        convertV4MiniflareOptions({
          modules: true,
          script: "export default { fetch() { return new Response(null, { status: 404 }); } }",
          // wrangler's getDefaultPersistRoot(): `<persist-to>/v3`, under which each plugin keeps its own folder.
          resourcePersistencePath: resolve(this.persistTo, "v3"),
          r2Buckets: { BUCKET: this.bucketName },
          kvNamespaces: { NAMESPACE: this.namespaceId },
        }),
      );
      keepSignalHandling(handlers);
      try {
        const bindings = Promise.all([mf.getR2Bucket("BUCKET"), mf.getKVNamespace("NAMESPACE")]);
        const [bucket, kv] = await withTimeout(
          bindings,
          START_TIMEOUT_MS,
          `workerd did not start within ${START_TIMEOUT_MS / 1000} s`,
        );
        return { mf, bucket: bucket as unknown as Bucket, kv: kv as unknown as Namespace };
      } catch (error) {
        await withTimeout(mf.dispose(), 10_000, "workerd did not stop within 10 s").catch(() => undefined);
        const what = `starting local R2/KV under ${this.persistTo}/v3`;
        if (attempt >= ATTEMPTS) throw callError(what, error);
        this.#retrying(what, attempt, error, true);
        await sleep(RETRY_DELAY_MS * 4 * attempt);
      }
    }
  }
}

type SignalListener = (...args: unknown[]) => void;

function signalListeners(): Map<NodeJS.Signals, SignalListener[]> {
  return new Map(
    (["SIGINT", "SIGTERM"] as const).map((sig) => [sig, process.listeners(sig) as SignalListener[]]),
  );
}

/**
 * Miniflare's exit hook ends the process on SIGINT and SIGTERM. Where the process handles those
 * itself (`pipeline run` stops at its next step, writes its record and releases its lock), the
 * hook would end it before any of that: its listeners are removed again. workerd, killed by the
 * same Ctrl-C, is started afresh by the next call (#call), and still stopped on exit.
 */
function keepSignalHandling(before: Map<NodeJS.Signals, SignalListener[]>): void {
  for (const [sig, listeners] of before) {
    if (listeners.length === 0) continue;
    for (const listener of process.listeners(sig) as SignalListener[])
      if (!listeners.includes(listener)) process.removeListener(sig, listener);
  }
}

async function holds(bucket: Bucket, key: string, bytes: Uint8Array): Promise<boolean> {
  const object = await bucket.get(key);
  if (!object) return false;
  return Buffer.from(await object.arrayBuffer()).equals(bytes);
}

class CallTimeout extends Error {}

/** `promise`, or a CallTimeout after `ms`. */
async function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new CallTimeout(message)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** miniflare's answer once its workerd has exited or been disposed: only a fresh one helps. */
function isGone(error: unknown): boolean {
  const message = error instanceof Error ? error.message : String(error);
  return /poisoned stub|ECONNREFUSED|ECONNRESET|socket hang up|other side closed/i.test(message);
}

/** A LocalRegistry over `options.persistTo`; call close() when done, or the process stays alive. */
export function localRegistry(options: LocalRegistryOptions): LocalRegistry {
  return new LocalRegistry(options);
}

function callError(what: string, error: unknown): Error {
  const reason = error instanceof Error ? error.message : String(error);
  return new Error(`local registry: ${what} failed after ${ATTEMPTS} tries: ${reason}`, { cause: error });
}

/**
 * miniflare comes with wrangler, which local mode needs anyway (`wrangler dev` serves the same
 * state); it is loaded only here, so remote mode and the rest of mtrank run without it.
 */
async function loadMiniflare(): Promise<typeof import("miniflare")> {
  try {
    return await import("miniflare");
  } catch (error) {
    throw new Error(
      `the local registry needs wrangler (its miniflare): npm install --save-dev wrangler (${error instanceof Error ? error.message : String(error)})`,
    );
  }
}
