/**
 * What a model directory's manifest must satisfy before its graph runs: a structure small enough
 * to parse (counted before JSON.parse), strings the worker puts in headers and logs without
 * control characters, and widths that match the graph's inputs; and what a model keeps of it.
 */
import { env } from "cloudflare:workers";
import * as ort from "onnxruntime-web/wasm";
import { describe, expect, it, vi } from "vitest";
import { createApp } from "../../edge/app.ts";
import type { EdgeEnv } from "../../edge/env.ts";
import { manifestSummary, parseManifest, servedManifest } from "../../edge/model/manifest.ts";
import {
  fetchRemoteModel,
  MAX_MANIFEST_CONTAINERS,
  MAX_MANIFEST_DEPTH,
  ModelVerificationError,
} from "../../edge/model/remote.ts";
import { servingModel } from "../../edge/model/serving-model.ts";
import modelBytes from "../../fixtures/model/model.onnx";
import manifestJsonF from "../../fixtures/model-factorised/manifest.json";
import factorisedBytesF from "../../fixtures/model-factorised/model.factorised.onnx";
import plainBytesF from "../../fixtures/model-factorised/model.onnx";
import type { ModelManifest } from "../../shared/manifest.ts";
import { logLines } from "./log-lines.ts";
import { backgroundWork, bindings, POINTER, servedApp, upload } from "./r2-store.ts";
import { manifest } from "./requests.ts";

const manifestF = manifestJsonF as unknown as ModelManifest;

const log = logLines(() => env.TEST_POINTERS.delete(POINTER));

const events = log.events;

/** One app (one isolate); each rerank waits for the background work it started. */
function serve(binding: EdgeEnv) {
  const served = servedApp(binding);
  return async (): Promise<Response> => {
    const res = await served.rerank();
    await served.settle();
    return res;
  };
}

describe("manifest strings with control characters", () => {
  for (const version of ["r2\nbad", "r2\r\nx-evil: 1", "r2\u0000", "r2\t", "r2\u0085"])
    it(`version ${JSON.stringify(version)} is refused at load; the previous model keeps serving`, async () => {
      await env.TEST_POINTERS.put(POINTER, await upload("bad-version", version));
      const rerank = serve(bindings("0").binding);
      for (let i = 0; i < 2; i++) {
        const res = await rerank();
        expect(res.status).toBe(200);
        expect(res.headers.get("x-model-version")).toBe(manifest.version);
        expect(((await res.json()) as { fallback: boolean }).fallback).toBe(false);
      }
      expect(events("model.swap")).toEqual([]);
      const [rejected] = events("model.rejected");
      expect(String(rejected?.error)).toMatch(
        /invalid manifest: version: must not contain control characters/,
      );
    });

  it("every name and label the worker copies into headers, logs or errors is checked", () => {
    const heads = manifest.heads;
    const features = manifest.features;
    const cases: [string, Record<string, unknown>][] = [
      ["id", { id: "a\nb" }],
      ["version", { version: "a\u007f" }],
      ["createdAt", { createdAt: "2026\r" }],
      ["arch", { arch: "mlp\u0000" }],
      ["heads.0.output", { heads: heads.map((h, i) => (i === 0 ? { ...h, output: "x\ny" } : h)) }],
      ["inputs.dense", { inputs: { ...manifest.inputs, dense: "dense\n" } }],
      [
        "features.features.1.name",
        {
          features: {
            ...features,
            features: features.features.map((f, i) => (i === 1 ? { ...f, name: "seg\u001b[31m" } : f)),
          },
        },
      ],
    ];
    for (const [field, change] of cases)
      expect(() => parseManifest({ ...manifest, ...change }), field).toThrow(
        `invalid manifest: ${field}: must not contain control characters`,
      );
    expect(() => parseManifest({ ...manifest, version: "v".repeat(257) })).toThrow(/version/);
    // What exporters write, and text past ASCII, stay valid.
    expect(parseManifest({ ...manifest, version: "2026-12-07T10:00:00.000Z ✓" }).version).toContain("✓");
  });
});

describe("manifest.json structure, counted before JSON.parse", () => {
  it("a manifest opening more objects and arrays than any real one is refused unparsed", async () => {
    // 4 MiB of `{},`: well under the byte cap, ~90 MiB of heap once parsed.
    const padding = `[${"{},".repeat((4 * 2 ** 20) / 3)}{}]`;
    const text = `{"id":"x","padding":${padding}}`;
    await env.TEST_MODELS.put("models/many-objects/manifest.json", text);
    const parse = vi.spyOn(JSON, "parse");
    try {
      await expect(fetchRemoteModel(env.TEST_MODELS, "models/many-objects/")).rejects.toThrow(
        new ModelVerificationError(
          `models/many-objects/manifest.json opens more than ${MAX_MANIFEST_CONTAINERS} objects and arrays: not parsed`,
        ),
      );
      expect(parse).not.toHaveBeenCalled();
    } finally {
      parse.mockRestore();
    }
  });

  it("a manifest nesting past the depth limit is refused at load; the bundled model keeps serving", async () => {
    const deep = `${"[".repeat(100)}${"]".repeat(100)}`;
    const prefix = await upload("deep-metrics", "r2-deep", {
      extra: { metrics: { deep: JSON.parse(deep) } },
    });
    await env.TEST_POINTERS.put(POINTER, prefix);
    const rerank = serve(bindings("0").binding);
    await rerank();
    expect((await rerank()).headers.get("x-model-version")).toBe(manifest.version);
    expect(String(events("model.rejected")[0]?.error)).toBe(
      `ModelVerificationError: ${prefix}manifest.json nests objects and arrays more than ${MAX_MANIFEST_DEPTH} deep: not parsed`,
    );
  });

  it("vocabularies of hundreds of thousands of strings are not counted: such a manifest serves", async () => {
    const vocab = Array.from({ length: 300_000 }, (_, i) => `v${i}`);
    const prefix = await upload("big-vocab", "r2-big-vocab", { extra: { unused: { vocab, counts: vocab } } });
    await env.TEST_POINTERS.put(POINTER, prefix);
    const rerank = serve(bindings("0").binding);
    await rerank();
    expect((await rerank()).headers.get("x-model-version")).toBe("r2-big-vocab");
  });
});

describe("graph inputs, checked against the manifest before the trial run", () => {
  /** The class create() instantiates (its type hides the prototype). */
  const sessionClass = ort.InferenceSession as unknown as { prototype: ort.InferenceSession };

  it("a denseSize or idSlots that lies is refused before anything runs; the session is released", async () => {
    const run = vi.spyOn(sessionClass.prototype, "run");
    const release = vi.spyOn(sessionClass.prototype, "release");
    try {
      const { denseSize, idSlots } = manifest.features;
      const cases = [
        [
          "dense-lies",
          { denseSize: 2 ** 18 },
          `input "dense" is float32 [n, ${denseSize}]; the manifest feeds float32 rows of 262144`,
        ],
        [
          "ids-lie",
          { idSlots: idSlots + 1 },
          `input "ids" is int32 [n, ${idSlots}]; the manifest feeds int32 rows of ${idSlots + 1}`,
        ],
      ] as const;
      for (const [i, [label, change, error]] of cases.entries()) {
        await env.TEST_POINTERS.put(
          POINTER,
          await upload(label, `r2-${label}`, { features: { ...manifest.features, ...change } }),
        );
        const rerank = serve(bindings("0").binding);
        await rerank();
        expect((await rerank()).headers.get("x-model-version"), label).toBe(manifest.version);
        expect(String(events("model.rejected")[i]?.error), label).toBe(`Error: model.onnx: ${error}`);
      }
      // Only the bundled model ran (its trial run and the requests): never at the lying widths.
      const widths = new Set(
        run.mock.calls.flatMap(([feeds]) =>
          Object.values(feeds as Record<string, ort.Tensor>).map((t) => `${t.type} ${t.dims[1]}`),
        ),
      );
      expect([...widths].sort()).toEqual([`float32 ${denseSize}`, `int32 ${idSlots}`]);
      expect(release).toHaveBeenCalledTimes(cases.length);
    } finally {
      run.mockRestore();
      release.mockRestore();
    }
  });

  it("a factorised side whose width is not the graph's leaves the plain graph serving", async () => {
    const bad = structuredClone(manifestF);
    // Still every column once, but one moved from the item side to the user side.
    bad.factorised!.user.dense = [0, 1, 2];
    bad.factorised!.item.dense = [3, 4, 5];
    const model = servingModel({ manifest: bad, model: plainBytesF, factorised: factorisedBytesF });
    expect((await model.load()).graph).toBe("plain");
    const [rejected] = events("model.factorised_rejected");
    expect(String(rejected?.error)).toBe(
      'Error: model.factorised.onnx: input "user_dense" is float32 [1, 2]; the manifest feeds float32 rows of 3',
    );
  });
});

describe("what a model keeps of its manifest", () => {
  const sha256 = "ab".repeat(32);
  const noisy = {
    ...manifest,
    padding: "x".repeat(1_000_000),
    heads: manifest.heads.map((h) => ({ ...h, note: "y".repeat(100_000) })),
    metrics: {
      validation: {
        click: { auc: 0.6, f1: null, count: 10, deep: { a: [[[1]]] }, note: "z" },
        purchase: "not metrics",
      },
      other: { anything: [1, 2, 3] },
    },
    files: {
      "model.onnx": { sha256, bytes: 12, note: "w" },
      "bad-hash.onnx": { sha256: "not hex", bytes: 1 },
      "bad-bytes.onnx": { sha256, bytes: "12" },
      ["f".repeat(300)]: { sha256, bytes: 1 },
    },
  };

  it("only the fields the worker reads or serves; metrics as flat numbers, files as sha256 and bytes", () => {
    const served = servedManifest(parseManifest(noisy));
    expect(JSON.stringify(served).length).toBeLessThan(20_000);
    expect(served).not.toHaveProperty("padding");
    expect(served.heads).toEqual(manifest.heads);
    expect(served.metrics).toEqual({ validation: { click: { auc: 0.6, f1: null, count: 10 } } });
    expect(served.files).toEqual({ "model.onnx": { sha256, bytes: 12 } });
    // The exporter's manifests are served as they were written.
    expect(manifestSummary(servedManifest(parseManifest(manifest)))).toMatchObject({
      metrics: manifest.metrics,
      files: manifest.files,
    });
  });

  it("GET /v1/models serves the kept summary of an R2 model whose manifest carries more", async () => {
    const prefix = await upload("noisy", "r2-noisy", {
      extra: { padding: noisy.padding, metrics: noisy.metrics },
    });
    await env.TEST_POINTERS.put(POINTER, prefix);
    const app = createApp({ manifest, model: modelBytes });
    const background = backgroundWork();
    const { binding } = bindings("0");
    const models = async () => {
      const res = await app.fetch(new Request("http://mtrank.test/v1/models"), binding, background.ctx);
      await background.settle();
      expect(res.status).toBe(200);
      return ((await res.json()) as { models: Record<string, unknown>[] }).models;
    };
    await models();
    const [model] = await models();
    expect(model).toMatchObject({
      version: "r2-noisy",
      metrics: { validation: { click: { auc: 0.6, f1: null, count: 10 } } },
    });
    expect(JSON.stringify(model)).not.toMatch(/padding|deep|note|other/);
  });
});
