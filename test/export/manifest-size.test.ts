/**
 * A manifest over the worker's default cap on manifest.json is said at export, naming each id
 * feature's vocabulary size, instead of being found when every isolate refuses it from R2.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { DEFAULT_MANIFEST_MAX_BYTES } from "../../edge/model/remote.ts";
import type { ModelManifest } from "../../shared/manifest.ts";
import { manifestWarnings } from "../../trainer/export/export-model.ts";

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
});
