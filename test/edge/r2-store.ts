/**
 * Model directories in miniflare's local R2 + KV (env.TEST_MODELS, env.TEST_POINTERS) for the
 * tests of models served from a pointer, bindings that count what the worker reads, and an
 * execution context whose waitUntil work the tests can wait for.
 */
import { env } from "cloudflare:workers";
import type { ExecutionContext } from "hono";
import { createApp } from "../../edge/app.ts";
import type { EdgeEnv, R2ObjectBody } from "../../edge/env.ts";
import { sha256Hex } from "../../edge/model/remote.ts";
import modelBytes from "../../fixtures/model/model.onnx";
import { candidates, manifest, postRerank, rerankBody } from "./requests.ts";

export const POINTER = "models/current";

export interface UploadOptions {
  bytes?: ArrayBuffer;
  sha256?: string;
  files?: unknown;
  features?: unknown;
  /** Upload manifest.json only: the graph comes later (or never). */
  withoutModel?: boolean;
  /** Extra manifest fields (e.g. padding past the manifest cap). */
  extra?: Record<string, unknown>;
}

/** Uploads the fixture model under models/<label>/ with a manifest naming `version`; returns the prefix. */
export async function upload(label: string, version: string, options: UploadOptions = {}): Promise<string> {
  const prefix = `models/${label}/`;
  const bytes = options.bytes ?? modelBytes;
  const sha256 = options.sha256 ?? (await sha256Hex(modelBytes));
  const files = options.files ?? { "model.onnx": { sha256, bytes: bytes.byteLength } };
  const features = options.features ?? manifest.features;
  await env.TEST_MODELS.put(
    `${prefix}manifest.json`,
    JSON.stringify({ ...manifest, ...options.extra, features, version, files }),
  );
  if (options.withoutModel) await env.TEST_MODELS.delete(`${prefix}model.onnx`);
  else await env.TEST_MODELS.put(`${prefix}model.onnx`, bytes);
  return prefix;
}

export interface Reads {
  /** KV gets. */
  pointer: number;
  /** R2 gets of .onnx files. */
  model: number;
  /** Object bodies read (arrayBuffer or text), any key. */
  body: number;
}

export interface BindingHooks {
  /** Runs before each KV get; a throw is the get failing. */
  beforePointer?: (key: string) => void;
  /** Awaited before each R2 get of a .onnx file (a slow download). */
  beforeModel?: (key: string) => Promise<void>;
}

/** Bindings for one app, counting the worker's reads of KV and R2. */
export function bindings(
  refreshSeconds: string,
  hooks: BindingHooks = {},
): { binding: EdgeEnv; reads: Reads } {
  const reads: Reads = { pointer: 0, model: 0, body: 0 };
  const counted = (object: R2ObjectBody): R2ObjectBody => ({
    size: object.size,
    ...(object.body ? { body: object.body } : {}),
    arrayBuffer: () => {
      reads.body += 1;
      return object.arrayBuffer();
    },
    text: () => {
      reads.body += 1;
      return object.text();
    },
  });
  const binding: EdgeEnv = {
    MTRANK_MODEL_REFRESH_S: refreshSeconds,
    MTRANK_MODEL_POINTERS: {
      get: async (key) => {
        reads.pointer += 1;
        hooks.beforePointer?.(key);
        return env.TEST_POINTERS.get(key);
      },
    },
    MTRANK_MODELS: {
      get: async (key) => {
        if (key.endsWith(".onnx")) {
          reads.model += 1;
          await hooks.beforeModel?.(key);
        }
        const object = await env.TEST_MODELS.get(key);
        return object && counted(object);
      },
    },
  };
  return { binding, reads };
}

/** What a route hands the runtime's waitUntil, kept so a test can wait for it. */
export function backgroundWork() {
  const pending: Promise<unknown>[] = [];
  const ctx: ExecutionContext = {
    waitUntil: (work) => {
      pending.push(work);
    },
    passThroughOnException: () => undefined,
    props: {},
  };
  return {
    ctx,
    pending,
    /** Waits until every piece of background work so far has settled. */
    async settle(): Promise<void> {
      while (pending.length > 0) await Promise.all(pending.splice(0));
    },
  };
}

/**
 * One app (one isolate's catalog) on `binding`: `rerank` posts five candidates through it, and
 * `settle` waits for the background work the requests so far started (a pointer read, a load).
 */
export function servedApp(binding: EdgeEnv) {
  const app = createApp({ manifest, model: modelBytes });
  const background = backgroundWork();
  const rerank = () =>
    postRerank(rerankBody({ candidates: candidates(5) }), async (r) => app.fetch(r, binding, background.ctx));
  return { app, rerank, ...background };
}

/** A promise a test resolves when it chooses (a download held open). */
export function gate(): { opened: Promise<void>; open(): void } {
  let open: () => void = () => undefined;
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { opened, open };
}
