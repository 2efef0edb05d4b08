/**
 * onnxruntime keeps a session in wasm memory (which never shrinks) until release(): a model that
 * can no longer serve must release its session. Counted by spying on InferenceSession's release
 * across swaps, refused loads and loads past their deadline; a request still using a replaced
 * model keeps it until it is done.
 */
import { env } from "cloudflare:workers";
import * as ort from "onnxruntime-web/wasm";
import { afterEach, describe, expect, it, type MockInstance, vi } from "vitest";
import type { EdgeEnv } from "../../edge/env.ts";
import { modelCatalog } from "../../edge/model/catalog.ts";
import { servingModel } from "../../edge/model/serving-model.ts";
import type { SlotOptions } from "../../edge/model/slot.ts";
import { warmUpRequest } from "../../edge/model/warm-up.ts";
import modelBytes from "../../fixtures/model/model.onnx";
import { logLines } from "./log-lines.ts";
import { backgroundWork, bindings, gate, POINTER, servedApp, upload } from "./r2-store.ts";
import { manifest, type RerankBody } from "./requests.ts";

/** The class create() instantiates (its type hides the prototype). */
const sessionClass = ort.InferenceSession as unknown as { prototype: ort.InferenceSession };
let release: MockInstance<ort.InferenceSession["release"]>;
const log = logLines(async () => {
  release = vi.spyOn(sessionClass.prototype, "release");
  await env.TEST_POINTERS.delete(POINTER);
});
afterEach(() => {
  release.mockRestore();
});

const events = log.events;

/** One app (one isolate); each rerank waits for the background work it started. */
function serve(binding: EdgeEnv) {
  const served = servedApp(binding);
  return async (): Promise<RerankBody> => {
    const res = await served.rerank();
    expect(res.status).toBe(200);
    await served.settle();
    return (await res.json()) as RerankBody;
  };
}

function catalog(binding: EdgeEnv, options: SlotOptions = {}) {
  const models = modelCatalog(servingModel({ manifest, model: modelBytes }), undefined, options);
  const work = backgroundWork();
  const choose = async () => {
    const choice = await models.choose(binding, undefined, (p) => work.ctx.waitUntil(p));
    await work.settle();
    return choice;
  };
  return { choose };
}

describe("sessions are released when their model can no longer serve", () => {
  it("each swap releases the replaced model's session; the bundled one is kept", async () => {
    const a = await upload("swap-a", "r2-a");
    const b = await upload("swap-b", "r2-b");
    const rerank = serve(bindings("0").binding);
    await env.TEST_POINTERS.put(POINTER, a);
    await rerank();
    expect((await rerank()).model.version).toBe("r2-a");
    const swaps = 20;
    for (let i = 0; i < swaps; i++) {
      await env.TEST_POINTERS.put(POINTER, i % 2 === 0 ? b : a);
      await rerank(); // the load runs behind this request
    }
    expect(events("model.swap")).toHaveLength(swaps + 1);
    // The first swap replaced the bundled model, which is kept; every later one released.
    await vi.waitFor(() => expect(release).toHaveBeenCalledTimes(swaps));
    expect(events("model.released")).toHaveLength(swaps);

    // Back to the bundled model: the last R2 model goes too, and the bundled one still serves.
    await env.TEST_POINTERS.delete(POINTER);
    await rerank();
    const served = await rerank();
    expect(served).toMatchObject({ fallback: false, model: { version: manifest.version } });
    await vi.waitFor(() => expect(release).toHaveBeenCalledTimes(swaps + 1));
  });

  it("a request holding a replaced model is served by it; its session goes once that request is done", async () => {
    const { binding } = bindings("0");
    const { choose } = catalog(binding);
    await env.TEST_POINTERS.put(POINTER, await upload("held-a", "r2-a"));
    (await choose()).done(); // loads r2-a behind it
    const held = await choose();
    expect(held.model.manifest?.version).toBe("r2-a");

    await env.TEST_POINTERS.put(POINTER, await upload("held-b", "r2-b"));
    const other = await choose(); // still r2-a; r2-b swaps in behind it
    expect(other.model).toBe(held.model);
    other.done();
    const next = await choose();
    expect(next.model.manifest?.version).toBe("r2-b");
    next.done();
    expect(release).not.toHaveBeenCalled();

    const loaded = await held.model.load();
    const request = warmUpRequest(manifest.features, 3);
    const batch = loaded.encoder.encodeRequest(
      { user: request.user.features, context: request.context.features },
      request.candidates.map((c) => c.features),
    );
    const heads = await loaded.predict(batch);
    expect(heads[manifest.heads[0]!.name]).toHaveLength(3);
    expect(release).not.toHaveBeenCalled();

    held.done();
    held.done(); // a second call counts once
    await vi.waitFor(() => expect(release).toHaveBeenCalledTimes(1));
    await expect(held.model.load()).rejects.toThrow(/released/);
  });

  it("a load refused after its session was created releases that session", async () => {
    const cases = [
      // The graph's input is not as wide as the manifest says.
      ["unrunnable", { features: { ...manifest.features, denseSize: manifest.features.denseSize + 1 } }],
      // The graph lacks an output the manifest names.
      [
        "no-output",
        { extra: { heads: manifest.heads.map((h, i) => (i === 0 ? { ...h, output: "nowhere" } : h)) } },
      ],
    ] as const;
    for (const [i, [label, options]] of cases.entries()) {
      await env.TEST_POINTERS.put(POINTER, await upload(label, `r2-${label}`, options));
      const rerank = serve(bindings("0").binding);
      expect((await rerank()).model.version).toBe(manifest.version);
      expect(events("model.rejected"), label).toHaveLength(i + 1);
      await vi.waitFor(() => expect(release, label).toHaveBeenCalledTimes(i + 1));
    }
    expect(events("model.swap")).toEqual([]);
  });

  it("a trial run that fails releases the session", async () => {
    const run = vi.spyOn(sessionClass.prototype, "run").mockRejectedValueOnce(new Error("OrtRun failed"));
    try {
      await expect(servingModel({ manifest, model: modelBytes }).load()).rejects.toThrow("OrtRun failed");
      expect(release).toHaveBeenCalledTimes(1);
    } finally {
      run.mockRestore();
    }
  });

  it("a session created past the load's deadline is released and never serves", async () => {
    await env.TEST_POINTERS.put(POINTER, await upload("late", "r2-late"));
    // onnxruntime cannot stop a session being created: the deadline passes while it is.
    const creating = gate();
    const started = gate();
    const real = ort.InferenceSession.create.bind(ort.InferenceSession) as (
      ...args: unknown[]
    ) => Promise<ort.InferenceSession>;
    const create = vi.spyOn(ort.InferenceSession, "create").mockImplementation((async (
      ...args: unknown[]
    ) => {
      started.open();
      await creating.opened;
      return real(...args);
    }) as typeof ort.InferenceSession.create);
    try {
      const { choose } = catalog(bindings("0").binding, { loadTimeoutMs: 100, now: () => 0 });
      const first = await choose(); // settles when the deadline passes
      first.done();
      await started.opened;
      expect(events("model.rejected")).toHaveLength(1);
      creating.open();
      await vi.waitFor(() => expect(release).toHaveBeenCalledTimes(1));
      const after = await choose();
      expect(after.model.manifest?.version).toBe(manifest.version);
      after.done();
    } finally {
      creating.open();
      create.mockRestore();
    }
  });

  it("a graph R2 answers past the load's deadline is not read: no session is created", async () => {
    await env.TEST_POINTERS.put(POINTER, await upload("late-download", "r2-late-download"));
    const download = gate();
    const { binding } = bindings("0", { beforeModel: () => download.opened });
    const create = vi.spyOn(ort.InferenceSession, "create");
    try {
      const { choose } = catalog(binding, { loadTimeoutMs: 100, now: () => 0 });
      const first = await choose(); // settles when the deadline passes
      first.done();
      expect(events("model.rejected")).toHaveLength(1);
      download.open();
      // The late load's steps, had it gone on: the body read and hashed, a session created.
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(create).not.toHaveBeenCalled();
      expect(release).not.toHaveBeenCalled();
      const after = await choose();
      expect(after.model.manifest?.version).toBe(manifest.version);
      after.done();
    } finally {
      create.mockRestore();
    }
  });
});
