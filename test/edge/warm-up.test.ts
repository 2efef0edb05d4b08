/** The request a model runs while loading is one the worker itself accepts and scores. */
import { beforeAll, describe, expect, it } from "vitest";
import { WARM_UP_ROWS, warmUpRequest } from "../../edge/model/warm-up.ts";
import featuresManifest from "../../fixtures/model-features/manifest.json";
import { compileEncoder } from "../../shared/encoder/encode.ts";
import type { EncoderState } from "../../shared/encoder/state.ts";
import { get, manifest, postRerank } from "./requests.ts";

beforeAll(async () => {
  await get("/healthz"); // loads the worker (and ORT's wasm) once, under the hook timeout
});

describe("warm-up request", () => {
  it("passes validation and encoding, and the model scores it (no fallback)", async () => {
    const request = warmUpRequest(manifest.features);
    expect(request.candidates).toHaveLength(WARM_UP_ROWS);
    const res = await postRerank(request);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { fallback: boolean; items: unknown[] };
    expect(body.fallback).toBe(false);
    expect(body.items).toHaveLength(WARM_UP_ROWS);
  });

  it("gives every feature a present value, bags and vectors included, which the encoder reads", () => {
    for (const state of [manifest.features, featuresManifest.features as EncoderState]) {
      const request = warmUpRequest(state);
      const present = new Set([
        ...Object.keys(request.user.features),
        ...Object.keys(request.context.features),
        ...Object.keys(request.candidates[1]!.features),
      ]);
      for (const f of state.features) expect(present.has(f.name), f.name).toBe(true);
      const encoder = compileEncoder(state);
      const batch = encoder.encodeRequest(
        { user: request.user.features, context: request.context.features },
        request.candidates.map((c) => c.features),
      );
      // Every vector reads as present (its missing indicator 0), and every dense value is finite.
      for (const f of state.features)
        if (f.kind === "vector")
          for (let r = 0; r < batch.rows; r++)
            expect(batch.dense[r * state.denseSize + f.denseOffset + f.dim], f.name).toBe(0);
      expect(batch.dense.every(Number.isFinite)).toBe(true);
    }
    expect(featuresManifest.features.features.some((f) => f.kind === "vector")).toBe(true);
  });
});
