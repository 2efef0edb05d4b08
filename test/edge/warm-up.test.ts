/** The request a model runs while loading is one the worker itself accepts and scores. */
import { beforeAll, describe, expect, it } from "vitest";
import { WARM_UP_ROWS, warmUpRequest } from "../../edge/model/warm-up.ts";
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

  it("gives every feature of the model a present value except vectors", () => {
    const request = warmUpRequest(manifest.features);
    const present = new Set([
      ...Object.keys(request.user.features),
      ...Object.keys(request.context.features),
      ...Object.keys(request.candidates[1]!.features),
    ]);
    for (const f of manifest.features.features)
      if (f.kind !== "vector") expect(present.has(f.name), f.name).toBe(true);
  });
});
