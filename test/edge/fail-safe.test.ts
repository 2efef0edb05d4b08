/**
 * A model that cannot load or run: 200 with the original order, `fallback: true`, the
 * x-mtrank-fallback header and the request's JSON log line says why; never a 5xx that would break the page.
 */
import { afterEach, beforeEach, describe, expect, it, type MockInstance, vi } from "vitest";
import { createApp, startApp } from "../../edge/app.ts";
import { WARM_UP_ROWS } from "../../edge/model/warm-up.ts";
import modelBytes from "../../fixtures/model/model.onnx";
import { createGraph } from "../../trainer/core/onnx-graph.ts";
import { candidates, type Fetch, get, manifest, postRerank, type RerankBody } from "./requests.ts";

let logged: MockInstance<typeof console.log>;
beforeEach(() => {
  logged = vi.spyOn(console, "log").mockImplementation(() => undefined);
});
afterEach(() => {
  logged.mockRestore();
});

/**
 * A graph with the fixture manifest's inputs and outputs that runs only at batch WARM_UP_ROWS
 * (a Reshape to a fixed row count): it passes the load's trial run and fails on other requests.
 */
function fixedBatchGraph(): ArrayBuffer {
  const g = createGraph("fixed-batch");
  const { denseSize, idSlots } = manifest.features;
  const dense = g.input(manifest.inputs.dense ?? "dense", "float32", ["n", denseSize]);
  g.input(manifest.inputs.ids ?? "ids", "int32", ["n", idSlots]);
  const shape = g.initializer("shape", [2], BigInt64Array.from([BigInt(WARM_UP_ROWS), BigInt(denseSize)]));
  const axes = g.initializer("axes", [1], BigInt64Array.from([1n]));
  const sum = g.node("ReduceSum", [g.node("Reshape", [dense, shape]), axes], { keepdims: 1 });
  for (const head of manifest.heads) g.output(g.node("Sigmoid", [sum], {}, head.output), "float32", ["n", 1]);
  const bytes = g.toBytes({});
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}

function appFetch(source: Parameters<typeof createApp>[0]): Fetch {
  const app = createApp(source);
  return async (request) => app.fetch(request);
}

async function expectFallback(fetch: Fetch, reason: string): Promise<void> {
  const list = candidates(6);
  const res = await postRerank({ candidates: list, topK: 4 }, fetch);
  expect(res.status).toBe(200);
  expect(res.headers.get("x-mtrank-fallback")).toBe("1");
  const body = (await res.json()) as RerankBody;
  expect(body.fallback).toBe(true);
  expect(body.items).toEqual(list.slice(0, 4).map((c) => ({ id: c.id, score: 0, heads: {} })));
  const line = JSON.parse(String(logged.mock.calls.at(-1)?.[0])) as Record<string, unknown>;
  expect(line).toMatchObject({ level: "error", event: "request", status: 200, fallback: reason });
  expect(line.error).toMatch(/\S/);
}

describe("fail-safe", () => {
  it("model.onnx that does not load -> original order, fallback: true", async () => {
    const fetch = appFetch({ manifest, model: new Uint8Array([1, 2, 3, 4]).buffer });
    await expectFallback(fetch, "model_unavailable");
    await expectFallback(fetch, "model_unavailable"); // the failure is cached, still no 5xx
    const bad = await postRerank({ candidates: [{ id: 1 }] }, fetch);
    expect(bad.status).toBe(400); // client errors are still client errors
  });

  it("an unusable manifest -> fallback, and /v1/models lists nothing", async () => {
    const fetch = appFetch({ manifest: { id: "broken" }, model: modelBytes });
    await expectFallback(fetch, "model_unavailable");
    const models = await get("/v1/models", fetch);
    expect(await models.json()).toEqual({ models: [] });
    expect((await get("/healthz", fetch)).status).toBe(200);
  });

  it("a graph that cannot run -> rejected by the warm-up run at load -> fallback", async () => {
    // The graph declares dense [n, D]; a manifest claiming D + 1 makes every run fail, the
    // load's warm-up run included, so the model is never served.
    const features = { ...manifest.features, denseSize: manifest.features.denseSize + 1 };
    const fetch = appFetch({ manifest: { ...manifest, features }, model: modelBytes });
    await expectFallback(fetch, "model_unavailable");
  });

  it("inference that throws on a request -> fallback inference_failed", async () => {
    // Loads (its trial run has WARM_UP_ROWS rows), then fails on the request's 6 candidates.
    await expectFallback(appFetch({ manifest, model: fixedBatchGraph() }), "inference_failed");
  });

  it("a model that fails to load at start-up (startApp) does not stop the worker", async () => {
    const app = await startApp({ manifest, model: new Uint8Array([9, 9, 9]).buffer });
    await expectFallback(async (request) => app.fetch(request), "model_unavailable");
  });

  it("startApp loads the model before the first request", async () => {
    const app = await startApp({ manifest, model: modelBytes });
    const res = await postRerank({ candidates: candidates(3) }, async (request) => app.fetch(request));
    expect(((await res.json()) as RerankBody).fallback).toBe(false);
    // The load phase is measured around an already-settled promise.
    const load = /load;dur=([\d.]+)/.exec(res.headers.get("server-timing") ?? "");
    expect(Number(load?.[1])).toBeLessThan(5);
  });

  it("the bundled model does not fall back", async () => {
    const res = await postRerank({ candidates: candidates(3) }, appFetch({ manifest, model: modelBytes }));
    expect(((await res.json()) as RerankBody).fallback).toBe(false);
  });
});
