/**
 * Factorised serving inside workerd: with a manifest `factorised` section and its graph bundled,
 * the worker feeds user/context features once (batch 1) and item features per candidate, and
 * answers with the plain graph's scores. Fixture: fixtures/model-factorised/ (export --factorised).
 */
import * as ort from "onnxruntime-web/wasm";
import { afterEach, beforeEach, describe, expect, it, type MockInstance, vi } from "vitest";
import { createApp } from "../../edge/app.ts";
import type { R2BucketReader } from "../../edge/env.ts";
import { ManifestError, parseManifest } from "../../edge/model/manifest.ts";
import { fetchRemoteModel, ModelVerificationError, sha256Hex } from "../../edge/model/remote.ts";
import { servingModel } from "../../edge/model/serving-model.ts";
import loggedRequests from "../../fixtures/model/requests.json";
import manifestJson from "../../fixtures/model-factorised/manifest.json";
import factorisedBytes from "../../fixtures/model-factorised/model.factorised.onnx";
import plainBytes from "../../fixtures/model-factorised/model.onnx";
import type { ModelManifest } from "../../shared/manifest.ts";
import { type Fetch, postRerank, type RerankBody } from "./requests.ts";

const manifest = manifestJson as unknown as ModelManifest;
const { factorised: _section, ...plainManifest } = manifest;

let logged: MockInstance<typeof console.log>;
beforeEach(() => {
  logged = vi.spyOn(console, "log").mockImplementation(() => undefined);
});
afterEach(() => {
  logged.mockRestore();
});

const fetcher =
  (app: ReturnType<typeof createApp>): Fetch =>
  (request) =>
    Promise.resolve(app.fetch(request));

/** The `graph` field of the last request log line. */
function lastGraph(): unknown {
  const lines = logged.mock.calls.map((c) => JSON.parse(String(c[0])) as Record<string, unknown>);
  return lines.filter((l) => l.event === "request").at(-1)?.graph;
}

async function rerank(fetch: Fetch, body: unknown): Promise<RerankBody> {
  const res = await postRerank(body, fetch);
  expect(res.status).toBe(200);
  const out = (await res.json()) as RerankBody;
  expect(out.fallback).toBe(false);
  return out;
}

/** Logged requests, plus one of 120 candidates built by cycling their items. */
function requests(): unknown[] {
  const first = loggedRequests[0]!;
  const pool = loggedRequests.flatMap((r) => r.candidates);
  const many = Array.from({ length: 120 }, (_, i) => ({ ...pool[i % pool.length]!, id: `x${i}` }));
  return [...loggedRequests, { ...first, candidates: many }];
}

describe("factorised serving", () => {
  it("gives the plain graph's scores and heads (max |Δ| <= 1e-5) for logged requests", async () => {
    const plain = fetcher(createApp({ manifest: plainManifest, model: plainBytes }));
    const factorised = fetcher(createApp({ manifest, model: plainBytes, factorised: factorisedBytes }));
    let maxDiff = 0;
    let spread = 0;
    for (const body of requests()) {
      const a = await rerank(plain, body);
      expect(lastGraph()).toBe("plain");
      const b = await rerank(factorised, body);
      expect(lastGraph()).toBe("factorised");
      expect(b.items.length).toBe(a.items.length);
      const byId = new Map(b.items.map((i) => [i.id, i]));
      for (const item of a.items) {
        const other = byId.get(item.id)!;
        maxDiff = Math.max(maxDiff, Math.abs(item.score - other.score));
        for (const [head, p] of Object.entries(item.heads))
          maxDiff = Math.max(maxDiff, Math.abs(p - other.heads[head]!));
      }
      const scores = a.items.map((i) => i.score);
      spread = Math.max(spread, Math.max(...scores) - Math.min(...scores));
    }
    expect(maxDiff).toBeLessThanOrEqual(1e-5);
    // Scores differ across candidates, so agreeing on them means something.
    expect(spread).toBeGreaterThan(1e-3);
  });

  it("serves the plain graph when the factorised bytes are not bundled", async () => {
    const loaded = await servingModel({ manifest, model: plainBytes }).load();
    expect(loaded.graph).toBe("plain");
    const both = await servingModel({ manifest, model: plainBytes, factorised: factorisedBytes }).load();
    expect(both.graph).toBe("factorised");
  });

  it("serves the plain graph, and logs why, when the factorised graph does not load", async () => {
    const broken = new Uint8Array(factorisedBytes.slice(0, 4000)).buffer;
    const app = createApp({ manifest, model: plainBytes, factorised: broken });
    const body = loggedRequests[0]!;
    const out = await rerank(fetcher(app), body);
    expect(out.items.length).toBe(body.candidates.length);
    expect(lastGraph()).toBe("plain");
    const events = logged.mock.calls.map((c) => (JSON.parse(String(c[0])) as { event: string }).event);
    expect(events).toContain("model.factorised_rejected");
  });

  it("refuses a manifest whose factorised columns lie outside the inputs, naming the field", () => {
    const bad = structuredClone(manifestJson) as unknown as ModelManifest;
    bad.factorised!.item.dense = [...bad.factorised!.item.dense, manifest.features.denseSize];
    expect(() => parseManifest(bad)).toThrow(ManifestError);
    expect(() => parseManifest(bad)).toThrow(/factorised\.item\.dense\.\d+/);
    const noInput = structuredClone(manifestJson) as unknown as ModelManifest;
    delete noInput.factorised!.inputs.userIds;
    expect(() => parseManifest(noInput)).toThrow(/factorised\.inputs\.userIds is missing/);
  });
});

describe("a factorised graph or section that cannot serve leaves the plain graph serving", () => {
  /** The class create() instantiates (its type hides the prototype). */
  const sessionClass = ort.InferenceSession as unknown as { prototype: ort.InferenceSession };
  const rejected = () =>
    logged.mock.calls
      .map((c) => JSON.parse(String(c[0])) as Record<string, unknown>)
      .filter((l) => l.event === "model.factorised_rejected")
      .map((l) => String(l.error));
  const withFactorised = (change: (m: ModelManifest) => void) => {
    const m = structuredClone(manifestJson) as unknown as ModelManifest;
    change(m);
    return { manifest: m, model: plainBytes, factorised: factorisedBytes };
  };

  it("a trial run of the factorised graph that fails: the plain graph serves, the factorised session is released", async () => {
    const run = vi.spyOn(sessionClass.prototype, "run").mockRejectedValueOnce(new Error("OrtRun failed"));
    const release = vi.spyOn(sessionClass.prototype, "release");
    try {
      const loaded = await servingModel({ manifest, model: plainBytes, factorised: factorisedBytes }).load();
      expect(loaded.graph).toBe("plain");
      expect(rejected()).toEqual(["Error: OrtRun failed"]);
      expect(release).toHaveBeenCalledTimes(1);
    } finally {
      run.mockRestore();
      release.mockRestore();
    }
  });

  it("columns listed out of order, twice, or not at all: refused, and the plain graph's scores served", async () => {
    const body = loggedRequests[0]!;
    const plain = await rerank(fetcher(createApp({ manifest: plainManifest, model: plainBytes })), body);
    const cases: [(m: ModelManifest) => void, string][] = [
      [
        (m) => m.factorised!.item.dense.reverse(),
        "factorised.item.dense must be in ascending order, each column once",
      ],
      [
        (m) => {
          m.factorised!.user.ids[0] = m.factorised!.item.ids[0]!;
          m.factorised!.user.ids.sort((a, b) => a - b);
        },
        "factorised.user.ids and factorised.item.ids must split the 9 id slots between them, each once",
      ],
      [
        (m) => {
          m.factorised!.item.dense.pop();
        },
        "factorised.user.dense and factorised.item.dense must split the 6 dense columns between them, each once",
      ],
    ];
    for (const [i, [change, error]] of cases.entries()) {
      const app = createApp(withFactorised(change));
      const out = await rerank(fetcher(app), body);
      expect(lastGraph(), error).toBe("plain");
      expect(rejected()[i]).toBe(`Error: ${error}`);
      expect(out.items).toEqual(plain.items);
    }
  });

  it("a denseSize that lies is refused by the plain graph's widths, before any run at that width", async () => {
    const run = vi.spyOn(sessionClass.prototype, "run");
    try {
      const source = withFactorised((m) => {
        m.features.denseSize = 2 ** 18;
      });
      await expect(servingModel(source).load()).rejects.toThrow(
        'model.onnx: input "dense" is float32 [n, 6]; the manifest feeds float32 rows of 262144',
      );
      expect(rejected()).toEqual([
        "Error: factorised.user.dense and factorised.item.dense must split the 262144 dense columns between them, each once",
      ]);
      expect(run).not.toHaveBeenCalled();
    } finally {
      run.mockRestore();
    }
  });
});

describe("factorised graph from R2", () => {
  function bucket(files: Record<string, ArrayBuffer | string>): R2BucketReader {
    return {
      get: async (key) => {
        const value = files[key];
        if (value === undefined) return null;
        const bytes = typeof value === "string" ? new TextEncoder().encode(value).buffer : value;
        return {
          size: bytes.byteLength,
          arrayBuffer: async () => bytes,
          text: async () => new TextDecoder().decode(bytes),
        };
      },
    };
  }

  it("fetches it with model.onnx, each checked against the manifest's sha256", async () => {
    const files = {
      "m/manifest.json": JSON.stringify(manifest),
      "m/model.onnx": plainBytes,
      "m/model.factorised.onnx": factorisedBytes,
    };
    const source = await fetchRemoteModel(bucket(files), "m/");
    expect(await sha256Hex(source.factorised!)).toBe(manifest.files["model.factorised.onnx"]!.sha256);
    expect((await servingModel(source).load()).graph).toBe("factorised");

    const tampered = new Uint8Array(factorisedBytes.slice(0));
    tampered[tampered.length - 1]! ^= 1;
    await expect(
      fetchRemoteModel(bucket({ ...files, "m/model.factorised.onnx": tampered.buffer }), "m/"),
    ).rejects.toThrow(ModelVerificationError);
    await expect(
      fetchRemoteModel(bucket({ ...files, "m/model.factorised.onnx": tampered.buffer }), "m/"),
    ).rejects.toThrow(/model\.factorised\.onnx: sha256/);
  });
});
