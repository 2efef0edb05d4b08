/**
 * Models from R2 + a KV pointer (miniflare's local R2 and KV), through the worker's routes:
 * verified by sha256 before use, loaded once per isolate in the request's waitUntil (requests
 * meanwhile get the model already serving), swapped when the pointer changes, never served when
 * they fail.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { EdgeEnv } from "../../edge/env.ts";
import { DEFAULT_MANIFEST_MAX_BYTES, fetchRemoteModel, sha256Hex } from "../../edge/model/remote.ts";
import modelBytes from "../../fixtures/model/model.onnx";
import { logLines } from "./log-lines.ts";
import { bindings, gate, POINTER, servedApp, type UploadOptions, upload } from "./r2-store.ts";
import { get, manifest, type RerankBody } from "./requests.ts";

const log = logLines(() => env.TEST_POINTERS.delete(POINTER));

interface Served {
  version: string;
  header: string | null;
  fallback: boolean;
}

/** One app (one isolate's catalog) with an execution context whose waitUntil work `settle` awaits. */
function serve(binding: EdgeEnv) {
  const { rerank: post, ...served } = servedApp(binding);
  const rerank = async (): Promise<Served> => {
    const res = await post();
    expect(res.status).toBe(200);
    const body = (await res.json()) as RerankBody;
    return {
      version: body.model.version,
      header: res.headers.get("x-model-version"),
      fallback: body.fallback,
    };
  };
  /** A rerank, then its background work done: the next request sees what it loaded. */
  const rerankSettled = async (): Promise<Served> => {
    const result = await rerank();
    await served.settle();
    return result;
  };
  return { ...served, rerank, rerankSettled };
}

const bundled: Served = { version: manifest.version, header: manifest.version, fallback: false };
const r2 = (version: string): Served => ({ version, header: version, fallback: false });

const events = log.events;

/** Fails the test instead of hanging when a request waits for a download held open. */
function promptly<T>(work: Promise<T>, ms = 10_000): Promise<T> {
  return Promise.race([
    work,
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms)),
  ]);
}

describe("models from R2 + KV", () => {
  it("no pointer in KV -> the bundled model", async () => {
    const { rerankSettled } = serve(bindings("60").binding);
    expect(await rerankSettled()).toEqual(bundled);
    expect(await rerankSettled()).toEqual(bundled);
    expect(events("model.swap")).toEqual([]);
  });

  it("the pointer's model loads in the background, then serves; loaded once per isolate", async () => {
    await env.TEST_POINTERS.put(POINTER, await upload("good-1", "r2-1"));
    const { binding, reads } = bindings("0");
    const { rerank, rerankSettled, pending } = serve(binding);
    // The first request does not wait for R2: the bundled model answers, the load goes to waitUntil.
    expect(await rerank()).toEqual(bundled);
    expect(pending).toHaveLength(1);
    expect(await rerankSettled()).toEqual(bundled); // the same load, still in flight
    for (let i = 0; i < 4; i += 1) expect(await rerankSettled()).toEqual(r2("r2-1"));
    expect(reads.model).toBe(1); // fetched once ...
    expect(reads.pointer).toBeGreaterThanOrEqual(5); // ... though with refresh 0 the pointer is read every time
    expect(events("model.swap")).toMatchObject([{ pointer: "models/good-1/", version: "r2-1" }]);
  });

  it("the pointer is read at most every MTRANK_MODEL_REFRESH_S seconds", async () => {
    await env.TEST_POINTERS.put(POINTER, await upload("good-1", "r2-1"));
    const { binding, reads } = bindings("3600");
    const { rerankSettled } = serve(binding);
    expect(await rerankSettled()).toEqual(bundled);
    expect((await rerankSettled()).version).toBe("r2-1");
    await env.TEST_POINTERS.put(POINTER, await upload("good-2", "r2-2"));
    for (let i = 0; i < 3; i += 1) expect((await rerankSettled()).version).toBe("r2-1");
    expect(reads.pointer).toBe(1);
  });

  it("a changed pointer swaps the model in; a deleted one goes back to the bundled model", async () => {
    await env.TEST_POINTERS.put(POINTER, await upload("good-1", "r2-1"));
    const { rerankSettled } = serve(bindings("0").binding);
    await rerankSettled();
    expect((await rerankSettled()).version).toBe("r2-1");
    await env.TEST_POINTERS.put(POINTER, await upload("good-2", "r2-2"));
    expect((await rerankSettled()).version).toBe("r2-1"); // r2-2 loads behind this request
    expect((await rerankSettled()).version).toBe("r2-2");
    await env.TEST_POINTERS.delete(POINTER);
    await rerankSettled();
    expect((await rerankSettled()).version).toBe(manifest.version);
  });

  it("a request during a slow load gets the serving model at once; one load at a time", async () => {
    await env.TEST_POINTERS.put(POINTER, await upload("good-1", "r2-1"));
    const requested = gate();
    const download = gate();
    const { binding, reads } = bindings("0", {
      beforeModel: (key) => {
        if (!key.startsWith("models/good-2/")) return Promise.resolve();
        requested.open();
        return download.opened;
      },
    });
    const { rerank, rerankSettled, settle, pending } = serve(binding);
    await rerankSettled();
    expect(await rerankSettled()).toEqual(r2("r2-1"));

    await env.TEST_POINTERS.put(POINTER, await upload("good-2", "r2-2"));
    const pointerReads = reads.pointer;
    // r2-2's download is held open: requests keep getting r2-1 without waiting for it.
    expect(await promptly(rerank())).toEqual(r2("r2-1"));
    await promptly(requested.opened);
    for (let i = 0; i < 3; i += 1) expect(await promptly(rerank())).toEqual(r2("r2-1"));
    expect(reads.model).toBe(2); // r2-2 requested once ...
    expect(reads.pointer).toBe(pointerReads + 1); // ... by the one refresh in flight
    expect(pending).toHaveLength(1);

    download.open();
    await settle();
    expect(await rerankSettled()).toEqual(r2("r2-2"));
    expect(events("model.swap").map((e) => e.version)).toEqual(["r2-1", "r2-2"]);
  });

  it("model.onnx that does not match the manifest's sha256 is never served", async () => {
    const tampered = new Uint8Array(modelBytes.slice(0));
    tampered[0] = (tampered.at(0) ?? 0) ^ 0xff;
    await env.TEST_POINTERS.put(POINTER, await upload("good-1", "r2-1"));
    const { binding, reads } = bindings("0");
    const { rerankSettled } = serve(binding);
    await rerankSettled();
    expect((await rerankSettled()).version).toBe("r2-1");

    await env.TEST_POINTERS.put(POINTER, await upload("tampered", "r2-bad", { bytes: tampered.buffer }));
    for (let i = 0; i < 3; i += 1) expect(await rerankSettled()).toEqual(r2("r2-1"));
    // Tried again only after its backoff (5 s at first; these requests take well under that).
    expect(reads.model).toBe(2);
    const [rejected, ...more] = events("model.rejected");
    expect(more).toEqual([]);
    expect(rejected).toMatchObject({
      level: "error",
      pointer: "models/tampered/",
      serving: manifest.id,
      attempts: 1,
    });
    expect(String(rejected!.error)).toMatch(/ModelVerificationError: .*sha256/);
    expect(Date.parse(String(rejected!.retryAt)) - Date.parse(String(rejected!.ts))).toBeGreaterThan(4000);
  });

  it("a model that fails at first load leaves the bundled model serving", async () => {
    const sha256 = await sha256Hex(modelBytes);
    const cases: [string, UploadOptions, RegExp][] = [
      ["wrong-hash", { sha256: "0".repeat(64) }, /sha256/],
      ["no-files", { files: {} }, /files\["model\.onnx"\]\.sha256 is missing/],
      ["truncated", { bytes: modelBytes.slice(0, 100) }, /sha256/],
      // The exporter always writes the byte count; a manifest without one is refused.
      [
        "no-bytes",
        { files: { "model.onnx": { sha256 } } },
        /files\["model\.onnx"\]\.bytes must be a byte count, got undefined/,
      ],
      [
        "string-bytes",
        { files: { "model.onnx": { sha256, bytes: "12" } } },
        /bytes must be a byte count, got "12"/,
      ],
      [
        "wrong-bytes",
        { files: { "model.onnx": { sha256, bytes: 7 } } },
        /model\.onnx: \d+ bytes, .* says 7$/,
      ],
      // Verified bytes, but the graph's inputs are not as wide as the manifest says: refused
      // before the trial run.
      [
        "unrunnable",
        { features: { ...manifest.features, denseSize: manifest.features.denseSize + 1 } },
        /input "dense" is float32 \[n, \d+\]; the manifest feeds float32 rows of \d+/,
      ],
      // Verified bytes and a graph that runs, but an encoder state that would write one feature
      // into another's column: refused when the encoder compiles.
      [
        "overlapping-columns",
        {
          features: {
            ...manifest.features,
            features: manifest.features.features.map((f) =>
              f.name === "user_activity" ? { ...f, denseOffset: manifest.features.denseSize - 1 } : f,
            ),
          },
        },
        /encoder state: features\[2\] "user_activity": dense column \d+ is outside|written by another feature/,
      ],
      ["absent", { withoutModel: true }, /R2 has no models\/absent\/model\.onnx/],
    ];
    for (const [label, options] of cases) {
      await env.TEST_POINTERS.put(POINTER, await upload(label, `r2-${label}`, options));
      const { rerankSettled } = serve(bindings("0").binding);
      expect(await rerankSettled(), label).toEqual(bundled);
      expect(await rerankSettled(), label).toEqual(bundled);
    }
    await env.TEST_POINTERS.put(POINTER, "models/nothing-here/");
    const { rerankSettled } = serve(bindings("0").binding);
    await rerankSettled();
    expect((await rerankSettled()).version).toBe(manifest.version);
    const rejected = events("model.rejected");
    expect(rejected.map((e) => e.pointer)).toEqual([
      ...cases.map(([label]) => `models/${label}/`),
      "models/nothing-here/",
    ]);
    for (const [i, [label, , error]] of cases.entries())
      expect(String(rejected[i]!.error), label).toMatch(error);
    expect(events("model.swap")).toEqual([]);
  });

  it("/v1/models lists the model the pointer names once it has loaded", async () => {
    await env.TEST_POINTERS.put(POINTER, await upload("good-1", "r2-1"));
    const { binding } = bindings("60");
    const { app, ctx, settle } = serve(binding);
    const models = async () => {
      const res = await get("/v1/models", async (r) => app.fetch(r, binding, ctx));
      await settle();
      return res.json();
    };
    expect(await models()).toMatchObject({ models: [{ version: manifest.version, arm: "champion" }] });
    expect(await models()).toMatchObject({ models: [{ id: manifest.id, version: "r2-1", arm: "champion" }] });
  });
});

describe("size caps", () => {
  it("a graph R2 declares larger than MTRANK_MODEL_MAX_BYTES is refused before its body is read", async () => {
    const cap = modelBytes.byteLength - 1;
    // The manifest under-states the size, so the R2 object's own size is what refuses it.
    const files = { "model.onnx": { sha256: await sha256Hex(modelBytes), bytes: 100 } };
    await env.TEST_POINTERS.put(POINTER, await upload("over-cap", "r2-big", { files }));
    const { binding, reads } = bindings("0");
    binding.MTRANK_MODEL_MAX_BYTES = String(cap);
    const { rerankSettled } = serve(binding);
    expect(await rerankSettled()).toEqual(bundled);
    expect(await rerankSettled()).toEqual(bundled);
    expect(reads.model).toBe(1);
    expect(reads.body).toBe(1); // manifest.json only: model.onnx's body was never read
    const [rejected] = events("model.rejected");
    expect(rejected?.pointer).toBe("models/over-cap/");
    expect(String(rejected?.error)).toBe(
      `ModelVerificationError: models/over-cap/model.onnx: ${modelBytes.byteLength} bytes, over the ${cap}-byte cap`,
    );
  });

  it("a manifest whose byte count is over the cap is refused without fetching the graph", async () => {
    const cap = modelBytes.byteLength - 1;
    await env.TEST_POINTERS.put(POINTER, await upload("over-cap-2", "r2-big"));
    const { binding, reads } = bindings("0");
    binding.MTRANK_MODEL_MAX_BYTES = String(cap);
    const { rerankSettled } = serve(binding);
    await rerankSettled();
    expect(await rerankSettled()).toEqual(bundled);
    expect(reads.model).toBe(0);
    expect(String(events("model.rejected")[0]?.error)).toMatch(
      new RegExp(`model\\.onnx.*bytes says ${modelBytes.byteLength}, over the ${cap}-byte cap`),
    );
  });

  it("the graph serves at exactly the cap", async () => {
    await env.TEST_POINTERS.put(POINTER, await upload("at-cap", "r2-at-cap"));
    const { binding } = bindings("0");
    binding.MTRANK_MODEL_MAX_BYTES = String(modelBytes.byteLength);
    const { rerankSettled } = serve(binding);
    await rerankSettled();
    expect(await rerankSettled()).toEqual(r2("r2-at-cap"));
  });

  it("a manifest.json over MTRANK_MANIFEST_MAX_BYTES is refused before its body is read", async () => {
    const padding = "x".repeat(64 * 1024);
    await env.TEST_POINTERS.put(POINTER, await upload("huge-manifest", "r2-huge", { extra: { padding } }));
    const { binding, reads } = bindings("0");
    binding.MTRANK_MANIFEST_MAX_BYTES = String(64 * 1024);
    const { rerankSettled } = serve(binding);
    await rerankSettled();
    expect(await rerankSettled()).toEqual(bundled);
    expect(reads.body).toBe(0);
    expect(reads.model).toBe(0);
    expect(String(events("model.rejected")[0]?.error)).toMatch(
      /^ModelVerificationError: models\/huge-manifest\/manifest\.json: \d+ bytes, over the 65536-byte cap$/,
    );
  });

  it("a 2 MiB manifest serves under the default cap", async () => {
    // The size of a catalog of ~60,000 items: an id feature's vocabulary, counts and rates weigh 30–35 bytes an entry.
    const catalog = { padding: "x".repeat(2 * 1024 * 1024) };
    await env.TEST_POINTERS.put(POINTER, await upload("catalog", "r2-catalog", { extra: catalog }));
    const { binding } = bindings("0");
    const { rerankSettled } = serve(binding);
    await rerankSettled();
    expect((await rerankSettled()).version).toBe("r2-catalog");
  });

  it("the default cap refuses a manifest R2 declares over 8 MiB, unread", async () => {
    // A bucket that declares the size (a real object of many MiB in miniflare's isolated storage
    // stalls the tests after it): what is checked is the declared size, before any read.
    let reads = 0;
    const bucket = {
      get: async (key: string) => ({
        size: key.endsWith("manifest.json") ? DEFAULT_MANIFEST_MAX_BYTES + 1 : 0,
        text: async () => {
          reads += 1;
          return "{}";
        },
        arrayBuffer: async () => {
          reads += 1;
          return new ArrayBuffer(0);
        },
      }),
    };
    expect(DEFAULT_MANIFEST_MAX_BYTES).toBe(8 * 1024 * 1024);
    await expect(fetchRemoteModel(bucket, "models/big/")).rejects.toThrow(
      `models/big/manifest.json: ${DEFAULT_MANIFEST_MAX_BYTES + 1} bytes, over the ${DEFAULT_MANIFEST_MAX_BYTES}-byte cap`,
    );
    await expect(
      fetchRemoteModel(bucket, "models/big/", { maxManifestBytes: DEFAULT_MANIFEST_MAX_BYTES + 1 }),
    ).rejects.toThrow(/files\["model\.onnx"\]/);
    expect(reads).toBe(1);
  });

  it("a bad MTRANK_MANIFEST_MAX_BYTES is logged and the 8 MiB default applies", async () => {
    await env.TEST_POINTERS.put(POINTER, await upload("good-manifest-cap", "r2-manifest-cap"));
    const { binding } = bindings("0");
    binding.MTRANK_MANIFEST_MAX_BYTES = String(512 * 1024 * 1024);
    const { rerankSettled } = serve(binding);
    await rerankSettled();
    expect((await rerankSettled()).version).toBe("r2-manifest-cap");
    expect(events("config.invalid")[0]?.error).toMatch(/MTRANK_MANIFEST_MAX_BYTES must be/);
  });

  it("a bad MTRANK_MODEL_MAX_BYTES is logged and the default cap applies", async () => {
    await env.TEST_POINTERS.put(POINTER, await upload("good-cap", "r2-cap"));
    const { binding } = bindings("0");
    binding.MTRANK_MODEL_MAX_BYTES = "lots";
    const { rerankSettled } = serve(binding);
    await rerankSettled();
    expect((await rerankSettled()).version).toBe("r2-cap");
    expect(events("config.invalid")[0]?.error).toMatch(/MTRANK_MODEL_MAX_BYTES must be a number/);
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
    const int8App = serve(int8.binding);
    await int8App.rerankSettled();
    expect(await int8App.rerankSettled()).toEqual(r2("r2-int8"));
    expect(int8.reads.model).toBe(1); // model.int8.onnx, once
    // float32 (the default) reads the broken model.onnx: refused, the bundled model keeps serving.
    const float32App = serve(bindings("0").binding);
    await float32App.rerankSettled();
    expect((await float32App.rerankSettled()).version).toBe(manifest.version);
    expect(events("model.rejected").map((e) => e.pointer)).toEqual(["models/int8-1/"]);
  });

  it("a value other than float32 or int8 is logged and float32 served", async () => {
    await env.TEST_POINTERS.put(POINTER, await upload("good-w", "r2-w"));
    const { binding } = bindings("0");
    binding.MTRANK_MODEL_WEIGHTS = "fp16";
    const { rerankSettled } = serve(binding);
    await rerankSettled();
    expect((await rerankSettled()).version).toBe("r2-w");
    expect(events("config.invalid")[0]?.error).toMatch(
      /MTRANK_MODEL_WEIGHTS must be "float32" or "int8", got "fp16"/,
    );
  });
});
