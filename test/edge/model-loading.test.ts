/**
 * Loading R2 models when something fails, with the catalog's clock in the test's hands (no
 * sleeping through backoffs): a retry with exponential backoff once a late upload is there, a
 * pointer change that starts afresh, a KV read that fails once, a load past its deadline.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { EdgeEnv } from "../../edge/env.ts";
import { DEFAULT_RETRY, nextFailure } from "../../edge/model/backoff.ts";
import { modelCatalog } from "../../edge/model/catalog.ts";
import { servingModel } from "../../edge/model/serving-model.ts";
import type { SlotOptions } from "../../edge/model/slot.ts";
import modelBytes from "../../fixtures/model/model.onnx";
import { logLines } from "./log-lines.ts";
import { backgroundWork, bindings, gate, POINTER, upload } from "./r2-store.ts";
import { manifest } from "./requests.ts";

const T0 = Date.parse("2026-03-01T00:00:00Z");
const { firstMs } = DEFAULT_RETRY;
const iso = (ms: number) => new Date(ms).toISOString();

const log = logLines(() => env.TEST_POINTERS.delete(POINTER));

const events = log.events;

/** A catalog on a clock the test moves; `serve` is one request: the version chosen, then its background work done. */
function catalogOnClock(binding: EdgeEnv, options: SlotOptions = {}) {
  const clock = { now: T0 };
  const catalog = modelCatalog(servingModel({ manifest, model: modelBytes }), undefined, {
    now: () => clock.now,
    ...options,
  });
  const work = backgroundWork();
  const serve = async (): Promise<string | undefined> => {
    const { model } = await catalog.choose(binding, undefined, (p) => work.ctx.waitUntil(p));
    await work.settle();
    return model.manifest?.version;
  };
  return { clock, serve };
}

describe("backoff", () => {
  it("doubles from the first wait up to the cap; another key starts again", () => {
    let failure = nextFailure(undefined, "a", 0, DEFAULT_RETRY);
    const waits = [failure.retryAt];
    for (let i = 0; i < 8; i += 1) {
      const at = failure.retryAt;
      failure = nextFailure(failure, "a", at, DEFAULT_RETRY);
      waits.push(failure.retryAt - at);
    }
    expect(waits).toEqual([5_000, 10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000, 300_000]);
    expect(failure.attempts).toBe(9);
    expect(nextFailure(failure, "b", 7, DEFAULT_RETRY)).toEqual({ key: "b", attempts: 1, retryAt: 5_007 });
  });
});

describe("retrying a model that failed to load", () => {
  it("a pointer published before its graph was uploaded serves once the graph is there", async () => {
    await env.TEST_POINTERS.put(POINTER, await upload("late", "r2-late", { withoutModel: true }));
    const { binding, reads } = bindings("0");
    const { clock, serve } = catalogOnClock(binding);

    expect(await serve()).toBe(manifest.version);
    expect(events("model.rejected")).toMatchObject([
      { pointer: "models/late/", attempts: 1, retryAt: iso(T0 + firstMs), serving: manifest.id },
    ]);
    expect(String(events("model.rejected")[0]!.error)).toMatch(/R2 has no models\/late\/model\.onnx/);

    clock.now = T0 + firstMs - 1; // backing off: the pointer is read, the graph is not fetched
    expect(await serve()).toBe(manifest.version);
    expect(reads.model).toBe(1);
    expect(reads.pointer).toBe(2);

    clock.now = T0 + firstMs; // tried again, still missing: the next wait doubles
    expect(await serve()).toBe(manifest.version);
    expect(reads.model).toBe(2);
    expect(events("model.rejected")[1]).toMatchObject({ attempts: 2, retryAt: iso(T0 + 3 * firstMs) });

    await env.TEST_MODELS.put("models/late/model.onnx", modelBytes);
    clock.now = T0 + 3 * firstMs - 1;
    expect(await serve()).toBe(manifest.version);
    expect(reads.model).toBe(2);

    clock.now = T0 + 3 * firstMs; // this request starts the load; the next one gets the new model
    expect(await serve()).toBe(manifest.version);
    expect(await serve()).toBe("r2-late");
    expect(reads.model).toBe(3);
    expect(events("model.swap")).toMatchObject([{ pointer: "models/late/", version: "r2-late" }]);
    expect(events("model.rejected")).toHaveLength(2);
  });

  it("a changed pointer is tried at once, its backoff starting afresh", async () => {
    await env.TEST_POINTERS.put(POINTER, await upload("broken-a", "r2-a", { withoutModel: true }));
    const { binding, reads } = bindings("0");
    const { clock, serve } = catalogOnClock(binding);
    await serve();
    clock.now = T0 + firstMs;
    await serve();
    expect(events("model.rejected").map((e) => [e.pointer, e.attempts])).toEqual([
      ["models/broken-a/", 1],
      ["models/broken-a/", 2],
    ]);

    // Well before broken-a's next retry: a different pointer is not held back by it.
    await env.TEST_POINTERS.put(POINTER, await upload("broken-b", "r2-b", { withoutModel: true }));
    clock.now = T0 + firstMs + 1;
    await serve();
    expect(events("model.rejected")[2]).toMatchObject({
      pointer: "models/broken-b/",
      attempts: 1,
      retryAt: iso(T0 + 2 * firstMs + 1),
    });
    await env.TEST_POINTERS.put(POINTER, await upload("fixed", "r2-fixed"));
    clock.now = T0 + firstMs + 2;
    expect(await serve()).toBe(manifest.version);
    expect(await serve()).toBe("r2-fixed");
    expect(reads.model).toBe(4);
  });

  it("a KV read that throws is logged and retried after its backoff, not on every request", async () => {
    await env.TEST_POINTERS.put(POINTER, await upload("after-kv", "r2-kv"));
    let failures = 1;
    const { binding, reads } = bindings("0", {
      beforePointer: () => {
        if (failures-- > 0) throw new Error("KV unavailable");
      },
    });
    const { clock, serve } = catalogOnClock(binding);
    expect(await serve()).toBe(manifest.version);
    expect(events("model.pointer_unreadable")).toMatchObject([
      { level: "error", pointerKey: POINTER, attempts: 1, retryAt: iso(T0 + firstMs) },
    ]);
    expect(String(events("model.pointer_unreadable")[0]!.error)).toMatch(/KV unavailable/);

    clock.now = T0 + firstMs - 1; // refresh 0, but KV is not asked again before the backoff
    expect(await serve()).toBe(manifest.version);
    expect(reads.pointer).toBe(1);

    clock.now = T0 + firstMs;
    expect(await serve()).toBe(manifest.version); // read, and the model loads behind this request
    expect(await serve()).toBe("r2-kv");
    expect(reads.pointer).toBe(3);
    expect(events("model.rejected")).toEqual([]);
  });

  it("a load past its deadline is a failure: the old model serves, the load is retried after the backoff", async () => {
    await env.TEST_POINTERS.put(POINTER, await upload("slow", "r2-slow"));
    const download = gate();
    const { binding, reads } = bindings("0", { beforeModel: () => download.opened });
    const { clock, serve } = catalogOnClock(binding, { loadTimeoutMs: 100 });

    expect(await serve()).toBe(manifest.version); // settles when the deadline passes
    const [rejected] = events("model.rejected");
    expect(rejected).toMatchObject({ pointer: "models/slow/", attempts: 1, retryAt: iso(T0 + firstMs) });
    expect(String(rejected!.error)).toBe("DeadlineError: loading models/slow/ took longer than 100 ms");

    download.open();
    expect(await serve()).toBe(manifest.version); // no retry before the backoff ...
    expect(reads.model).toBe(1);
    clock.now = T0 + firstMs; // ... and a fast one after it
    await serve();
    expect(await serve()).toBe("r2-slow");
    expect(reads.model).toBe(2);
    expect(events("model.swap")).toHaveLength(1);
  });
});
