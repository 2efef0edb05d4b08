/** rankCandidates refuses model outputs that are not finite numbers; manifests refuse weights the API would. */
import { describe, expect, it } from "vitest";
import { ServerTiming } from "../../edge/http/server-timing.ts";
import { ManifestError, parseManifest } from "../../edge/model/manifest.ts";
import type { LoadedModel } from "../../edge/model/serving-model.ts";
import { NonFiniteScoreError, rankCandidates } from "../../edge/rerank/rank.ts";
import { compileEncoder } from "../../shared/encoder/encode.ts";
import { candidates, headNames, manifest } from "./requests.ts";

function modelAnswering(value: (head: string, row: number) => number): LoadedModel {
  return {
    manifest,
    encoder: compileEncoder(manifest.features),
    graph: "plain",
    async predict(batch) {
      return Object.fromEntries(
        headNames.map((h) => [h, Float32Array.from({ length: batch.rows }, (_, i) => value(h, i))]),
      );
    },
  };
}

const rank = (model: LoadedModel, weights: Record<string, number>) => {
  const list = candidates(4);
  return rankCandidates(
    model,
    { candidates: list },
    list,
    { weights, mode: "sum" },
    new ServerTiming(),
    (o) => o,
  );
};

describe("rankCandidates", () => {
  it("ranks finite outputs", async () => {
    const items = await rank(
      modelAnswering((_, i) => i / 10),
      { [headNames[0]!]: 1 },
    );
    expect(items.map((i) => i.id)).toEqual(["c3", "c2", "c1", "c0"]);
  });

  it("NaN or Infinity in any head, weighted or not, is an error naming the candidate and head", async () => {
    const other = headNames.at(-1)!;
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      const model = modelAnswering((h, i) => (h === other && i === 2 ? bad : 0.5));
      await expect(rank(model, { [headNames[0]!]: 1 })).rejects.toThrow(NonFiniteScoreError);
      await expect(rank(model, { [headNames[0]!]: 1 })).rejects.toThrow(`candidate "c2": ${other} is ${bad}`);
    }
  });
});

describe("manifest fusion defaults", () => {
  it("a default weight the API would refuse (over 1e6, negative) makes the manifest invalid", () => {
    const head = headNames[0]!;
    for (const w of [1e6 + 1, 1e308, -1]) {
      const bad = { ...manifest, fusion: { defaults: { mode: "sum", weights: { [head]: w } } } };
      expect(() => parseManifest(bad)).toThrow(ManifestError);
    }
    const edge = { ...manifest, fusion: { defaults: { mode: "sum", weights: { [head]: 1e6 } } } };
    expect(parseManifest(edge).fusion.defaults.weights[head]).toBe(1e6);
  });
});

describe("manifest names", () => {
  it("refuses a feature or head named __proto__, constructor or prototype: requests cannot carry them", () => {
    for (const name of ["__proto__", "constructor", "prototype"]) {
      const features = manifest.features.features.map((f, i) => (i === 0 ? { ...f, name } : f));
      const badFeature = { ...manifest, features: { ...manifest.features, features } };
      expect(() => parseManifest(badFeature)).toThrow(
        /invalid manifest: features\.features\.0\.name: a name requests cannot carry as a key/,
      );
      const heads = manifest.heads.map((h, i) => (i === 0 ? { ...h, name } : h));
      expect(() => parseManifest({ ...manifest, heads })).toThrow(
        /heads\.0\.name: a name requests cannot carry/,
      );
    }
    expect(parseManifest(manifest).heads.length).toBe(manifest.heads.length);
  });
});
