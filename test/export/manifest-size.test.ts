/**
 * A manifest or a graph over the worker's default cap is said at export, naming what to shrink,
 * instead of being found when every isolate refuses it from R2.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { DEFAULT_MANIFEST_MAX_BYTES, DEFAULT_MODEL_MAX_BYTES } from "../../edge/model/remote.ts";
import type { ModelManifest } from "../../shared/manifest.ts";
import { graphWarnings, manifestWarnings } from "../../trainer/export/export-model.ts";

const manifest = JSON.parse(readFileSync("fixtures/model/manifest.json", "utf8")) as ModelManifest;

describe("manifest size at export", () => {
  it("warns over the worker's default cap, naming the vocabularies; not at or under it", () => {
    expect(manifestWarnings(DEFAULT_MANIFEST_MAX_BYTES, manifest)).toEqual([]);
    const [warning, ...more] = manifestWarnings(DEFAULT_MANIFEST_MAX_BYTES + 1, manifest);
    expect(more).toEqual([]);
    expect(warning).toContain(
      `manifest.json is ${DEFAULT_MANIFEST_MAX_BYTES + 1} bytes, over the worker's default MTRANK_MANIFEST_MAX_BYTES (${DEFAULT_MANIFEST_MAX_BYTES})`,
    );
    const vocabularies = manifest.features.features
      .filter((f) => "vocab" in f && Array.isArray(f.vocab))
      .map((f) => `${f.name} ${(f as { vocab: string[] }).vocab.length}`);
    expect(vocabularies.length).toBeGreaterThan(0);
    expect(warning).toContain(`vocabulary entries: ${vocabularies.join(", ")}`);
  });

  it("warns of each graph over the worker's default graph cap, not of one at it", () => {
    expect(graphWarnings({ "model.onnx": DEFAULT_MODEL_MAX_BYTES, "model.int8.onnx": 1000 })).toEqual([]);
    const warnings = graphWarnings({
      "model.onnx": DEFAULT_MODEL_MAX_BYTES + 1,
      "model.int8.onnx": 1000,
      "model.factorised.onnx": DEFAULT_MODEL_MAX_BYTES + 2,
    });
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toContain(
      `model.onnx is ${DEFAULT_MODEL_MAX_BYTES + 1} bytes, over the worker's default MTRANK_MODEL_MAX_BYTES (${DEFAULT_MODEL_MAX_BYTES})`,
    );
    expect(warnings[1]).toMatch(/^model\.factorised\.onnx is /);
  });
});
