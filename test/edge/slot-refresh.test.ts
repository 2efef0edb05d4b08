/**
 * A refresh runs in a request's waitUntil, which the runtime may end before the refresh's own
 * deadlines fire; a refresh that never settles must not keep the slot from reading its pointer
 * for the rest of the isolate's life.
 */
import { describe, expect, it, vi } from "vitest";
import { modelSlot, type SlotSettings } from "../../edge/model/slot.ts";
import type { ModelStore } from "../../edge/model/store.ts";
import { logLines } from "./log-lines.ts";

const log = logLines();
const SETTINGS: SlotSettings = { refreshSeconds: 1, maxModelBytes: 1 << 20, maxManifestBytes: 1 << 20 };
const TIMEOUT_MS = 60_000;

describe("a slot's refresh", () => {
  it("is abandoned when it has not settled after three load timeouts; if it ever goes on, it changes nothing", async () => {
    let t = 0;
    let settleFirst: (pointer: string | null) => void = () => undefined;
    const reads = vi.fn((): Promise<string | null> => {
      // The first read never settles by itself (its timer dropped with the request's context).
      if (reads.mock.calls.length === 1)
        return new Promise((resolve) => {
          settleFirst = resolve;
        });
      return Promise.resolve(null);
    });
    const downloads = vi.fn(async () => null);
    const store: ModelStore = { pointers: { get: reads }, bucket: { get: downloads }, weights: "float32" };
    const slot = modelSlot("models/current", undefined, { now: () => t, loadTimeoutMs: TIMEOUT_MS });

    slot.current(store, SETTINGS);
    expect(reads).toHaveBeenCalledTimes(1);
    // Due again by the refresh interval, but the first refresh may still be within its deadlines.
    t = 2 * TIMEOUT_MS;
    slot.current(store, SETTINGS);
    expect(reads).toHaveBeenCalledTimes(1);
    t = 3 * TIMEOUT_MS + 1;
    slot.current(store, SETTINGS);
    expect(reads).toHaveBeenCalledTimes(2);
    expect(log.events("model.refresh_abandoned")).toHaveLength(1);

    // The abandoned read comes back naming a model: nothing is downloaded, nothing swaps.
    settleFirst("models/late");
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(downloads).not.toHaveBeenCalled();
    expect(slot.current(store, SETTINGS)).toBeUndefined();
  });
});
