/**
 * Bag (multi_categorical) and vector features, and id-like categoricals' frequency and target columns (a
 * user id, an item id, known and unseen), served inside workerd: lists and separated strings in
 * the request body score as Node's encoder and onnxruntime scored them (plain and factorised
 * graphs), and a vector of the wrong length is a 400 naming the field. Fixture:
 * fixtures/model-features/ (test/fixtures/make-features-fixture.ts).
 */
import { afterEach, beforeEach, describe, expect, it, type MockInstance, vi } from "vitest";
import { createApp } from "../../edge/app.ts";
import manifestJson from "../../fixtures/model-features/manifest.json";
import factorisedBytes from "../../fixtures/model-features/model.factorised.onnx";
import plainBytes from "../../fixtures/model-features/model.onnx";
import requestsJson from "../../fixtures/model-features/requests.json";
import type { ModelManifest } from "../../shared/manifest.ts";
import { type Fetch, type ProblemBody, postRerank, type RerankBody } from "./requests.ts";

const manifest = manifestJson as unknown as ModelManifest;
const { factorised: _section, ...plainManifest } = manifest;
const requests = requestsJson as unknown as {
  body: { candidates: { id: string; features: Record<string, unknown> }[] } & Record<string, unknown>;
  expected: Record<string, number>;
}[];

let logged: MockInstance<typeof console.log>;
beforeEach(() => {
  logged = vi.spyOn(console, "log").mockImplementation(() => undefined);
});
afterEach(() => {
  logged.mockRestore();
});

const apps: [string, Fetch][] = [
  ["plain", (r) => Promise.resolve(createApp({ manifest: plainManifest, model: plainBytes }).fetch(r))],
  [
    "factorised",
    (r) => Promise.resolve(createApp({ manifest, model: plainBytes, factorised: factorisedBytes }).fetch(r)),
  ],
];

/** The `graph` field of the last request log line: which graph served. */
function lastGraph(): unknown {
  const lines = logged.mock.calls.map((c) => JSON.parse(String(c[0])) as Record<string, unknown>);
  return lines.filter((l) => l.event === "request").at(-1)?.graph;
}

describe.each(apps)("bag and vector features (%s graph)", (name, fetch) => {
  it("scores lists and separated strings as Node did (max |Δp| <= 1e-5)", async () => {
    let maxDiff = 0;
    let spread = 0;
    for (const { body, expected } of requests) {
      const res = await postRerank(body, fetch);
      expect(res.status).toBe(200);
      const out = (await res.json()) as RerankBody;
      expect(out.fallback).toBe(false);
      expect(lastGraph()).toBe(name);
      expect(out.items).toHaveLength(body.candidates.length);
      for (const item of out.items)
        maxDiff = Math.max(maxDiff, Math.abs(item.heads.click! - expected[item.id]!));
      const values = Object.values(expected);
      spread = Math.max(spread, Math.max(...values) - Math.min(...values));
    }
    expect(maxDiff).toBeLessThanOrEqual(1e-5);
    expect(spread).toBeGreaterThan(0.05);
  });

  it("answers 400 naming the field for a vector of the wrong length", async () => {
    const { body } = requests[0]!;
    const candidates = body.candidates.map((c) => ({ ...c, features: { ...c.features } }));
    candidates[2]!.features.item_vec = [0.1, 0.2];
    const res = await postRerank({ ...body, candidates }, fetch);
    expect(res.status).toBe(400);
    expect(res.headers.get("content-type")).toBe("application/problem+json");
    const problem = (await res.json()) as ProblemBody;
    expect(problem.errors).toEqual([
      { field: "candidates.2.features.item_vec", message: "expected 4 numbers, got 2" },
    ]);

    const user = { ...(body.user as { features: Record<string, unknown> }) };
    const bad = await postRerank(
      { ...body, user: { features: { ...user.features, user_vec: "1 2 x 4" } } },
      fetch,
    );
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as ProblemBody).errors?.[0]?.field).toBe("user.features.user_vec");

    // Past float32's range an element would be Infinity in the graph and every score NaN.
    const huge = body.candidates.map((c) => ({ ...c, features: { ...c.features } }));
    huge[1]!.features.item_vec = [0.1, 1e300, 0.3, 0.4];
    const tooLarge = await postRerank({ ...body, candidates: huge }, fetch);
    expect(tooLarge.status).toBe(400);
    expect(((await tooLarge.json()) as ProblemBody).errors).toEqual([
      {
        field: "candidates.1.features.item_vec",
        message: "element 1: 1e+300 is too large (at most 3.40e+38 in magnitude)",
      },
    ]);
  });

  it("answers 400 for an integer id beyond 2^53, which JSON has rounded into its neighbours", async () => {
    const { body } = requests[0]!;
    const rounded =
      "is an integer beyond 2^53, which JSON readers round (neighbouring ids read alike): write ids as strings";
    for (const [feature, value, message] of [
      ["item_id", 2 ** 60, `${2 ** 60} ${rounded}`],
      ["item_tags", ["a", 2 ** 55], `${2 ** 55} ${rounded}`],
    ] as const) {
      const candidates = body.candidates.map((c) => ({ ...c, features: { ...c.features } }));
      candidates[3]!.features[feature] = value;
      const res = await postRerank({ ...body, candidates }, fetch);
      expect(res.status, feature).toBe(400);
      expect(((await res.json()) as ProblemBody).errors).toEqual([
        { field: `candidates.3.features.${feature}`, message },
      ]);
    }
    // A list sent to a one-value categorical is refused, as the trainer refuses it in a log;
    // it used to read as missing.
    const listed = body.candidates.map((c) => ({ ...c, features: { ...c.features } }));
    listed[3]!.features.item_id = ["i1", "i2"];
    const res = await postRerank({ ...body, candidates: listed }, fetch);
    expect(res.status).toBe(400);
    expect(((await res.json()) as ProblemBody).errors).toEqual([
      {
        field: "candidates.3.features.item_id",
        message: '["i1","i2"] is not a category (a string, number or boolean)',
      },
    ]);
    const user = { ...(body.user as { features: Record<string, unknown> }) };
    const onUser = await postRerank(
      { ...body, user: { ...user, features: { ...user.features, user_id: ["u1"] } } },
      fetch,
    );
    expect(onUser.status).toBe(400);
    expect(((await onUser.json()) as ProblemBody).errors?.[0]?.field).toBe("user.features.user_id");
    // The largest safe integer is an id like any other.
    const candidates = body.candidates.map((c) => ({ ...c, features: { ...c.features } }));
    candidates[3]!.features.item_id = Number.MAX_SAFE_INTEGER;
    expect((await postRerank({ ...body, candidates }, fetch)).status).toBe(200);
  });
});
