/**
 * Models from R2 + a KV pointer (miniflare's local R2 and KV): verified by sha256 before use,
 * loaded once per isolate, swapped when the pointer changes, never served when they fail.
 */
import { env } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it, type MockInstance, vi } from "vitest";
import { createApp } from "../../edge/app.ts";
import type { EdgeEnv } from "../../edge/env.ts";
import { sha256Hex } from "../../edge/model/remote.ts";
import modelBytes from "../../fixtures/model/model.onnx";
import { candidates, get, manifest, postRerank, type RerankBody, rerankBody } from "./requests.ts";

const POINTER = "models/current";

let logged: MockInstance<typeof console.log>;
beforeEach(async () => {
  logged = vi.spyOn(console, "log").mockImplementation(() => undefined);
  await env.TEST_POINTERS.delete(POINTER);
});
afterEach(() => {
  logged.mockRestore();
});

/** Uploads the fixture model under models/<label>/ with a manifest naming `version`; returns the prefix. */
async function upload(
  label: string,
  version: string,
  options: { bytes?: ArrayBuffer; sha256?: string; files?: unknown; features?: unknown } = {},
): Promise<string> {
  const prefix = `models/${label}/`;
  const bytes = options.bytes ?? modelBytes;
  const sha256 = options.sha256 ?? (await sha256Hex(modelBytes));
  const files = options.files ?? { "model.onnx": { sha256, bytes: bytes.byteLength } };
  const features = options.features ?? manifest.features;
  await env.TEST_MODELS.put(
    `${prefix}manifest.json`,
    JSON.stringify({ ...manifest, features, version, files }),
  );
  await env.TEST_MODELS.put(`${prefix}model.onnx`, bytes);
  return prefix;
}

/** Bindings for one app, counting the worker's reads of KV and of .onnx graphs in R2. */
function bindings(refreshSeconds: string) {
  const reads = { pointer: 0, model: 0 };
  const binding: EdgeEnv = {
    MTRANK_MODEL_REFRESH_S: refreshSeconds,
    MTRANK_MODEL_POINTERS: {
      get: (key) => {
        reads.pointer += 1;
        return env.TEST_POINTERS.get(key);
      },
    },
    MTRANK_MODELS: {
      get: (key) => {
        if (key.endsWith(".onnx")) reads.model += 1;
        return env.TEST_MODELS.get(key);
      },
    },
  };
  return { binding, reads };
}

function serve(binding: EdgeEnv) {
  const app = createApp({ manifest, model: modelBytes });
  return async (): Promise<{ version: string; header: string | null; fallback: boolean }> => {
    const res = await postRerank(rerankBody({ candidates: candidates(5) }), async (r) =>
      app.fetch(r, binding),
    );
    expect(res.status).toBe(200);
    const body = (await res.json()) as RerankBody;
    return {
      version: body.model.version,
      header: res.headers.get("x-model-version"),
      fallback: body.fallback,
    };
  };
}

function events(name: string): Record<string, unknown>[] {
  return logged.mock.calls
    .map((call) => JSON.parse(String(call[0])) as Record<string, unknown>)
    .filter((line) => line.event === name);
}

describe("models from R2 + KV", () => {
  it("no pointer in KV -> the bundled model", async () => {
    const rerank = serve(bindings("60").binding);
    expect(await rerank()).toEqual({ version: manifest.version, header: manifest.version, fallback: false });
  });

  it("the pointer's model serves once verified, loaded once per isolate", async () => {
    await env.TEST_POINTERS.put(POINTER, await upload("good-1", "r2-1"));
    const { binding, reads } = bindings("0");
    const rerank = serve(binding);
    for (let i = 0; i < 4; i += 1)
      expect(await rerank()).toEqual({ version: "r2-1", header: "r2-1", fallback: false });
    expect(reads.pointer).toBe(4); // refresh 0: checked on every request ...
    expect(reads.model).toBe(1); // ... but fetched once
    expect(events("model.swap")).toMatchObject([{ pointer: "models/good-1/", version: "r2-1" }]);
  });

  it("the pointer is read at most every MTRANK_MODEL_REFRESH_S seconds", async () => {
    await env.TEST_POINTERS.put(POINTER, await upload("good-1", "r2-1"));
    const { binding, reads } = bindings("3600");
    const rerank = serve(binding);
    expect((await rerank()).version).toBe("r2-1");
    await env.TEST_POINTERS.put(POINTER, await upload("good-2", "r2-2"));
    for (let i = 0; i < 3; i += 1) expect((await rerank()).version).toBe("r2-1");
    expect(reads.pointer).toBe(1);
  });

  it("a changed pointer swaps the model in; a deleted one goes back to the bundled model", async () => {
    await env.TEST_POINTERS.put(POINTER, await upload("good-1", "r2-1"));
    const rerank = serve(bindings("0").binding);
    expect((await rerank()).version).toBe("r2-1");
    await env.TEST_POINTERS.put(POINTER, await upload("good-2", "r2-2"));
    expect((await rerank()).version).toBe("r2-2");
    await env.TEST_POINTERS.delete(POINTER);
    expect((await rerank()).version).toBe(manifest.version);
  });

  it("model.onnx that does not match the manifest's sha256 is never served", async () => {
    const tampered = new Uint8Array(modelBytes.slice(0));
    tampered[0] = (tampered.at(0) ?? 0) ^ 0xff;
    await env.TEST_POINTERS.put(POINTER, await upload("good-1", "r2-1"));
    const { binding, reads } = bindings("0");
    const rerank = serve(binding);
    expect((await rerank()).version).toBe("r2-1");

    await env.TEST_POINTERS.put(POINTER, await upload("tampered", "r2-bad", { bytes: tampered.buffer }));
    for (let i = 0; i < 3; i += 1)
      expect(await rerank()).toEqual({ version: "r2-1", header: "r2-1", fallback: false });
    expect(reads.model).toBe(2); // the rejected model is not fetched again while the pointer stays
    const [rejected, ...more] = events("model.rejected");
    expect(more).toEqual([]);
    expect(rejected).toMatchObject({ level: "error", pointer: "models/tampered/", serving: manifest.id });
    expect(String(rejected!.error)).toMatch(/ModelVerificationError: .*sha256/);
  });

  it("a model that fails at first load leaves the bundled model serving", async () => {
    const cases: [string, Parameters<typeof upload>[2]][] = [
      ["wrong-hash", { sha256: "0".repeat(64) }],
      ["no-files", { files: {} }],
      ["truncated", { bytes: modelBytes.slice(0, 100) }],
      // Verified bytes, but the graph cannot run the manifest's inputs: the trial run at load fails.
      ["unrunnable", { features: { ...manifest.features, denseSize: manifest.features.denseSize + 1 } }],
    ];
    for (const [label, options] of cases) {
      await env.TEST_POINTERS.put(POINTER, await upload(label, `r2-${label}`, options));
      const rerank = serve(bindings("0").binding);
      expect(await rerank(), label).toEqual({
        version: manifest.version,
        header: manifest.version,
        fallback: false,
      });
    }
    await env.TEST_POINTERS.put(POINTER, "models/absent/");
    expect((await serve(bindings("0").binding)()).version).toBe(manifest.version);
    expect(events("model.rejected").map((e) => e.pointer)).toEqual([
      "models/wrong-hash/",
      "models/no-files/",
      "models/truncated/",
      "models/unrunnable/",
      "models/absent/",
    ]);
  });

  it("/v1/models lists the model the pointer names", async () => {
    await env.TEST_POINTERS.put(POINTER, await upload("good-1", "r2-1"));
    const app = createApp({ manifest, model: modelBytes });
    const res = await get("/v1/models", async (r) => app.fetch(r, bindings("60").binding));
    expect(await res.json()).toMatchObject({
      models: [{ id: manifest.id, version: "r2-1", arm: "champion" }],
    });
  });
});

describe("MTRANK_MODEL_WEIGHTS", () => {
  /** A directory whose model.int8.onnx is a valid graph and whose model.onnx is not. */
  async function uploadInt8Only(label: string, version: string): Promise<string> {
    const prefix = `models/${label}/`;
    const broken = new Uint8Array([1, 2, 3]).buffer;
    const files = {
      "model.onnx": { sha256: await sha256Hex(broken), bytes: broken.byteLength },
      "model.int8.onnx": { sha256: await sha256Hex(modelBytes), bytes: modelBytes.byteLength },
    };
    await env.TEST_MODELS.put(`${prefix}manifest.json`, JSON.stringify({ ...manifest, version, files }));
    await env.TEST_MODELS.put(`${prefix}model.onnx`, broken);
    await env.TEST_MODELS.put(`${prefix}model.int8.onnx`, modelBytes);
    return prefix;
  }

  it("int8 serves each directory's verified model.int8.onnx; the default reads model.onnx", async () => {
    await env.TEST_POINTERS.put(POINTER, await uploadInt8Only("int8-1", "r2-int8"));
    const int8 = bindings("0");
    int8.binding.MTRANK_MODEL_WEIGHTS = "int8";
    expect(await serve(int8.binding)()).toEqual({ version: "r2-int8", header: "r2-int8", fallback: false });
    expect(int8.reads.model).toBe(1); // model.int8.onnx, once
    // float32 (the default) reads the broken model.onnx: refused, the bundled model keeps serving.
    expect((await serve(bindings("0").binding)()).version).toBe(manifest.version);
  });

  it("a value other than float32 or int8 is logged and float32 served", async () => {
    await env.TEST_POINTERS.put(POINTER, await upload("good-w", "r2-w"));
    const { binding } = bindings("0");
    binding.MTRANK_MODEL_WEIGHTS = "fp16";
    expect((await serve(binding)()).version).toBe("r2-w");
    expect(events("config.invalid")[0]?.error).toMatch(
      /MTRANK_MODEL_WEIGHTS must be "float32" or "int8", got "fp16"/,
    );
  });
});
