/**
 * One serving position (the champion, or the challenger): the model bundled with the worker,
 * replaced by the one a KV pointer names in R2 when the worker has those bindings.
 *
 * Requests never wait for R2: `current` returns the active model at once and, when the pointer
 * is due a read, starts one refresh (read, download, verify, session + warm-up) handed to the
 * request's `background` (waitUntil). The new model is swapped in only once it has loaded
 * whole, so a request sees the old model or the new one, never a half-loaded one.
 *
 * A failure (KV unreadable, files missing or not matching the manifest, a graph that does not
 * run, a load past its deadline) is logged and retried with exponential backoff (backoff.ts), not
 * given up on: the files of a pointer published before its upload finished load once they are
 * there. A different pointer is tried at once.
 *
 * Loads wait their turn in the isolate's load queue (load-queue.ts), shared with the other slot:
 * one graph loads at a time, the champion's before the challenger's.
 */
import { describeError, logLine } from "../log.ts";
import { DEFAULT_RETRY, type Failure, nextFailure, type RetryPolicy } from "./backoff.ts";
import { withDeadline } from "./deadline.ts";
import { type LoadQueue, type LoadTicket, loadQueue } from "./load-queue.ts";
import { fetchRemoteModel } from "./remote.ts";
import { type ServingModel, servingModel } from "./serving-model.ts";
import type { ModelStore } from "./store.ts";

/**
 * Where a request hands work it starts but must not wait for (http/background.ts wraps the
 * runtime's waitUntil); absent, the work just runs.
 */
export type Background = (work: Promise<unknown>) => void;

/** Limit on one pointer read, and on one model's download + verification + load. */
export const DEFAULT_LOAD_TIMEOUT_MS = 30_000;
/**
 * A refresh is abandoned after this many load timeouts: a pointer read, the wait for its turn in
 * the load queue (the other slot's load, within its own deadline) and the load take three.
 */
const ABANDON_AFTER = 3;
/**
 * A turn in the load queue held this many load timeouts is passed over: the load gives it back
 * when its deadline passes, at one, unless the runtime ended its refresh first.
 */
const TURN_LIMIT = 2;

export interface SlotOptions {
  /** Epoch milliseconds; tests pass their own clock to step through the backoff. */
  now?: () => number;
  /** Default DEFAULT_LOAD_TIMEOUT_MS. */
  loadTimeoutMs?: number;
  /** Default DEFAULT_RETRY. */
  retry?: RetryPolicy;
  /**
   * The isolate's load queue, shared by its slots so that one graph loads at a time (default: a
   * queue of this slot's own).
   */
  loads?: LoadQueue;
  /** This slot's place in `loads`: a lower rank loads first (default 0). */
  loadRank?: number;
}

/** Read from the env per request, so a changed var applies without a restart. */
export interface SlotSettings {
  refreshSeconds: number;
  /** Largest .onnx file accepted from R2. */
  maxModelBytes: number;
  /** Largest manifest.json accepted from R2. */
  maxManifestBytes: number;
}

export interface ModelSlot {
  /**
   * The model to serve now (undefined: this slot has none yet, e.g. no challenger configured or
   * its first one still loading). A due refresh goes to `background`, or runs unobserved.
   */
  current(
    store: ModelStore | undefined,
    settings: SlotSettings,
    background?: Background,
  ): ServingModel | undefined;
}

export function modelSlot(
  pointerKey: string,
  bundled: ServingModel | undefined,
  options: SlotOptions = {},
): ModelSlot {
  // Looked up per call rather than captured, so a test that mocks Date still drives it.
  const now = options.now ?? (() => Date.now());
  const timeoutMs = options.loadTimeoutMs ?? DEFAULT_LOAD_TIMEOUT_MS;
  const retry = options.retry ?? DEFAULT_RETRY;
  const loads = options.loads ?? loadQueue({ now });
  const rank = options.loadRank ?? 0;
  let active = bundled;
  let activePointer: string | null = null;
  let checkedAt = Number.NEGATIVE_INFINITY;
  /** The last pointer read, when it failed: the next read waits for its backoff. */
  let readFailure: Failure | undefined;
  /** The pointer that last failed to load: it is tried again after its backoff. */
  let loadFailure: Failure | undefined;
  /**
   * The refresh in flight and when it started. Its deadlines bound it, but it runs in a request's
   * waitUntil, which the runtime may end before they fire (about 30 s after the response); one
   * that never settled would keep every later refresh out for the isolate's life. Past
   * ABANDON_AFTER deadlines it is abandoned: a new one starts, and the old one, should it ever go
   * on, changes nothing (`generation`).
   */
  let refreshing: { done: Promise<void>; startedAt: number; ticket: LoadTicket } | undefined;
  let generation = 0;

  /** The replaced model is released once the requests already holding it are done. */
  function replace(next: ServingModel | undefined): void {
    const previous = active;
    active = next;
    if (previous && previous !== bundled && previous !== next) previous.retire();
  }

  function due(t: number, refreshMs: number): boolean {
    if (readFailure) return t >= readFailure.retryAt;
    if (loadFailure && t >= loadFailure.retryAt) return true;
    return t - checkedAt >= refreshMs;
  }

  async function refresh(
    store: ModelStore,
    settings: SlotSettings,
    mine: number,
    ticket: LoadTicket,
  ): Promise<void> {
    checkedAt = now();
    let pointer: string | null;
    try {
      pointer = await withDeadline(store.pointers.get(pointerKey), timeoutMs, `KV get ${pointerKey}`);
      if (mine !== generation) return;
      readFailure = undefined;
    } catch (error) {
      if (mine !== generation) return;
      readFailure = nextFailure(readFailure, pointerKey, now(), retry);
      logLine("error", "model.pointer_unreadable", {
        pointerKey,
        error: describeError(error),
        ...retryFields(readFailure),
      });
      return;
    }
    if (pointer === activePointer) {
      // Back to the serving pointer: whatever failed before is no longer wanted.
      loadFailure = undefined;
      return;
    }
    if (pointer === null) {
      // The pointer was deleted: back to the bundled model.
      logLine("info", "model.swap", { pointerKey, pointer, model: bundled?.manifest?.id });
      replace(bundled);
      activePointer = null;
      loadFailure = undefined;
      return;
    }
    if (loadFailure?.key === pointer && checkedAt < loadFailure.retryAt) return;
    try {
      // One load at a time in the isolate. The deadline starts with the turn: a load waiting
      // behind the other slot's is not timed out by that one's download.
      await ticket.turn();
      if (mine !== generation) return;
      // A load that finishes past its deadline never serves: its session is released.
      const next = await withDeadline(
        (signal) => load(store, pointer, settings, signal),
        timeoutMs,
        `loading ${pointer}`,
        (late) => late.retire(),
      );
      if (mine !== generation) {
        next.retire();
        return;
      }
      replace(next);
      activePointer = pointer;
      loadFailure = undefined;
      logLine("info", "model.swap", {
        pointerKey,
        pointer,
        model: next.manifest?.id,
        version: next.manifest?.version,
      });
    } catch (error) {
      if (mine !== generation) return;
      loadFailure = nextFailure(loadFailure, pointer, now(), retry);
      logLine("error", "model.rejected", {
        pointerKey,
        pointer,
        error: describeError(error),
        serving: active?.manifest?.id,
        ...retryFields(loadFailure),
      });
    }
  }

  return {
    current(store, settings, background) {
      if (!store) return bundled;
      const t = now();
      if (refreshing && t - refreshing.startedAt > ABANDON_AFTER * timeoutMs) {
        logLine("error", "model.refresh_abandoned", {
          pointerKey,
          startedAt: new Date(refreshing.startedAt).toISOString(),
        });
        // Whatever it still holds goes: its place in the load queue, and any say over the slot.
        refreshing.ticket.leave();
        refreshing = undefined;
        generation++;
      }
      if (!refreshing && due(t, settings.refreshSeconds * 1000)) {
        // One refresh at a time per slot: requests meanwhile serve the active model.
        const mine = ++generation;
        // Its place in the load queue is taken before the pointer is read: a slot ranked after
        // this one (the challenger), ready to load, waits while this one finds out if it has a load.
        const ticket = loads.join(rank, TURN_LIMIT * timeoutMs);
        const done = refresh(store, settings, mine, ticket)
          .catch(() => undefined)
          .finally(() => {
            // Its load settled, failed or passed its deadline, or there was none: the next goes.
            ticket.leave();
            if (mine === generation) refreshing = undefined;
          });
        refreshing = { done, startedAt: t, ticket };
        background?.(done);
      }
      return active;
    },
  };
}

/**
 * Fetched, verified, session created and warmed up: ready to serve. Past its deadline (`signal`)
 * it stops at the next step: no further R2 read, no session.
 */
async function load(
  store: ModelStore,
  pointer: string,
  settings: SlotSettings,
  signal: AbortSignal,
): Promise<ServingModel> {
  const source = await fetchRemoteModel(store.bucket, pointer, {
    weights: store.weights,
    maxModelBytes: settings.maxModelBytes,
    maxManifestBytes: settings.maxManifestBytes,
    signal,
  });
  signal.throwIfAborted();
  const model = servingModel(source);
  await model.load();
  return model;
}

function retryFields(failure: Failure): { attempts: number; retryAt: string } {
  return { attempts: failure.attempts, retryAt: new Date(failure.retryAt).toISOString() };
}
