/**
 * One serving position (the champion, or the challenger): the model bundled with the worker,
 * replaced by the one a KV pointer names in R2 when the worker has those bindings. The pointer
 * is read at most every `refreshSeconds`; a new model is fetched, verified and its session
 * created before it is swapped in, so requests never see a half-loaded model. A model that
 * fails is logged, remembered (not fetched again until the pointer changes) and never served:
 * the slot keeps its previous model.
 */
import { describeError, logLine } from "../log.ts";
import { fetchRemoteModel } from "./remote.ts";
import { type ServingModel, servingModel } from "./serving-model.ts";
import type { ModelStore } from "./store.ts";

export interface ModelSlot {
  /** The model to serve now (undefined: this slot has none, e.g. no challenger configured). */
  current(store: ModelStore | undefined, refreshSeconds: number): Promise<ServingModel | undefined>;
}

export function modelSlot(pointerKey: string, bundled: ServingModel | undefined): ModelSlot {
  let active = bundled;
  let activePointer: string | null = null;
  let rejected: string | undefined;
  let checkedAt = Number.NEGATIVE_INFINITY;
  let refreshing: Promise<void> | undefined;

  async function refresh(store: ModelStore): Promise<void> {
    checkedAt = Date.now();
    let pointer: string | null;
    try {
      pointer = await store.pointers.get(pointerKey);
    } catch (error) {
      logLine("error", "model.pointer_unreadable", { pointerKey, error: describeError(error) });
      return;
    }
    if (pointer === activePointer || pointer === rejected) return;
    if (pointer === null) {
      // The pointer was deleted: back to the bundled model.
      logLine("info", "model.swap", { pointerKey, pointer, model: active?.manifest?.id });
      active = bundled;
      activePointer = null;
      return;
    }
    try {
      const next = servingModel(await fetchRemoteModel(store.bucket, pointer, store.weights));
      await next.load();
      active = next;
      activePointer = pointer;
      logLine("info", "model.swap", {
        pointerKey,
        pointer,
        model: next.manifest?.id,
        version: next.manifest?.version,
      });
    } catch (error) {
      rejected = pointer;
      logLine("error", "model.rejected", {
        pointerKey,
        pointer,
        error: describeError(error),
        serving: active?.manifest?.id,
      });
    }
  }

  return {
    async current(store, refreshSeconds) {
      if (!store) return bundled;
      if (Date.now() - checkedAt >= refreshSeconds * 1000) {
        // Concurrent requests share one check (and one download).
        refreshing ??= refresh(store).finally(() => {
          refreshing = undefined;
        });
        await refreshing;
      }
      return active;
    },
  };
}
