/** Bad input to POST /v1/rerank: 4xx application/problem+json naming the field, never a 5xx. */
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../../edge/app.ts";
import { MAX_JSON_CONTAINERS, MAX_JSON_DEPTH } from "../../edge/json-containers.ts";
import { MAX_CANDIDATES, MAX_FILTER_LIST } from "../../edge/rerank/schema.ts";
import { MAX_BODY_BYTES } from "../../edge/routes/rerank.ts";
import modelBytes from "../../fixtures/model/model.onnx";
import {
  candidates,
  type FeatureValue,
  get,
  headNames,
  manifest,
  type ProblemBody,
  postRerank,
  rerankBody,
  worker,
} from "./requests.ts";

async function problem(res: Response, status: number): Promise<ProblemBody> {
  expect(res.status).toBe(status);
  expect(res.headers.get("content-type")).toBe("application/problem+json");
  const body = (await res.json()) as ProblemBody;
  expect(body.status).toBe(status);
  expect(typeof body.type).toBe("string");
  expect(typeof body.title).toBe("string");
  expect(typeof body.detail).toBe("string");
  return body;
}

/** Expects a 400 whose errors name `field` and whose detail mentions it. */
async function rejects(body: unknown, field: string): Promise<ProblemBody> {
  const p = await problem(await postRerank(body), 400);
  expect(p.errors?.map((e) => e.field)).toContain(field);
  expect(p.detail).toContain(field);
  return p;
}

beforeAll(async () => {
  await get("/healthz");
});

describe("POST /v1/rerank rejects bad input", () => {
  it("invalid JSON -> 400 problem+json", async () => {
    const p = await problem(await postRerank('{"candidates": ['), 400);
    expect(p.title).toMatch(/JSON/);
    expect(p.errors).toHaveLength(1);
    await problem(await postRerank(""), 400);
  });

  it("a body that is not an object -> 400", async () => {
    await problem(await postRerank("[]"), 400);
    await problem(await postRerank("null"), 400);
    await problem(await postRerank('"text"'), 400);
  });

  it("missing candidates -> 400 naming candidates", async () => {
    const p = await rejects({ user: { id: "u" } }, "candidates");
    expect(p.detail).toMatch(/candidates/);
  });

  it("candidates of the wrong shape -> 400 naming the element", async () => {
    await rejects({ candidates: "a,b" }, "candidates");
    await rejects({ candidates: [{ features: {} }] }, "candidates.0.id");
    await rejects({ candidates: [{ id: "a" }, { id: 7 }] }, "candidates.1.id");
    await rejects({ candidates: [{ id: "a", score: 1 }] }, "candidates.0.score");
  });

  it("feature values must be string, finite number, boolean or null, or a list of them", async () => {
    await rejects({ candidates: [{ id: "a", features: { x: { nested: 1 } } }] }, "candidates.0.features.x");
    await rejects({ candidates: [{ id: "a", features: { x: [[1], 2] } }] }, "candidates.0.features.x");
    await rejects(rerankBody({ candidates: [], user: { features: { x: {} } } }), "user.features.x");
    // JSON.parse reads 1e999 as Infinity.
    const p = await problem(await postRerank('{"candidates":[{"id":"a","features":{"x":1e999}}]}'), 400);
    expect(p.errors?.[0]?.field).toBe("candidates.0.features.x");
    const ok = await postRerank({
      candidates: [{ id: "a", features: { s: "x", n: 1.5, b: true, z: null, list: ["a", 2, null] } }],
    });
    expect(ok.status).toBe(200);
  });

  it("an unknown head in weights -> 400 naming weights.<name>", async () => {
    const p = await rejects({ candidates: [], weights: { no_such_head: 1 } }, "weights.no_such_head");
    for (const h of headNames) expect(p.detail).toContain(h);
  });

  it("negative or non-finite weights -> 400", async () => {
    const head = headNames[0]!;
    await rejects({ candidates: [], weights: { [head]: -1 } }, `weights.${head}`);
    await rejects({ candidates: [], weights: { [head]: "2" } }, `weights.${head}`);
    const p = await problem(await postRerank(`{"candidates":[],"weights":{"${head}":1e999}}`), 400);
    expect(p.errors?.[0]?.field).toBe(`weights.${head}`);
  });

  it("weights past 1e6 -> 400 naming the field; at 1e6 every score is a finite number", async () => {
    const head = headNames[0]!;
    for (const w of [1e308, Number.MAX_VALUE, 1e6 + 1])
      await rejects({ candidates: [], weights: { [head]: w } }, `weights.${head}`);
    for (const fusion of ["sum", "product"]) {
      const weights = Object.fromEntries(headNames.map((h) => [h, 1e6]));
      const res = await postRerank(
        rerankBody({ candidates: candidates(20), weights, fusion, explain: true }),
      );
      expect(res.status).toBe(200);
      const text = await res.text();
      expect(text).not.toContain("null");
      const body = JSON.parse(text) as { items: { score: number; contributions: Record<string, number> }[] };
      for (const item of body.items) {
        expect(Number.isFinite(item.score)).toBe(true);
        for (const c of Object.values(item.contributions)) expect(Number.isFinite(c)).toBe(true);
      }
    }
  });

  it("a numeric feature sent as a string that is no number -> 400 naming the field, as in training", async () => {
    const list = candidates(3);
    list[1]!.features = { ...list[1]!.features, item_price: "cheap" };
    const p = await problem(await postRerank(rerankBody({ candidates: list })), 400);
    expect(p.errors?.[0]?.field).toBe("candidates.1.features.item_price");
    expect(p.detail).toMatch(/"cheap" is not a number/);
    const numeric = await postRerank(
      rerankBody({
        candidates: list.map((c) => ({ ...c, features: { ...c.features, item_price: " 12.5 " } })),
      }),
    );
    expect(numeric.status).toBe(200);
    const user = await postRerank({
      user: { features: { user_activity: "lots" } },
      candidates: candidates(2),
    });
    expect((await problem(user, 400)).errors?.[0]?.field).toBe("user.features.user_activity");
    // Number() reads "0x10" as 16 and "0b11" as 3; training data refuses them, and so does serving.
    for (const spelled of ["0x10", "0b11", "Infinity"]) {
      list[1]!.features = { ...list[1]!.features, item_price: spelled };
      const p = await problem(await postRerank(rerankBody({ candidates: list })), 400);
      expect(p.errors?.[0]?.field).toBe("candidates.1.features.item_price");
      expect(p.detail).toContain(`${JSON.stringify(spelled)} is not a number`);
    }
  });

  it("a body stream that breaks off mid-read -> 400 problem, not a 500", async () => {
    let sent = false;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent) return controller.error(new Error("client reset"));
        sent = true;
        controller.enqueue(new TextEncoder().encode('{"candidates": ['));
      },
    });
    // Straight into the app: through the test pool's loopback the worker would see the body end
    // early (invalid JSON) rather than the stream's error.
    const app = createApp({ manifest, model: modelBytes });
    const res = await app.fetch(
      new Request("http://mtrank.test/v1/rerank", { method: "POST", body: stream }),
      {},
    );
    expect((await problem(res, 400)).type).toBe("urn:mtrank:problem:body-unreadable");
  });

  it("bad fusion, topK or explain -> 400 naming the field", async () => {
    await rejects({ candidates: [], fusion: "max" }, "fusion");
    await rejects({ candidates: [], topK: -1 }, "topK");
    await rejects({ candidates: [], topK: 2.5 }, "topK");
    await rejects({ candidates: [], explain: "yes" }, "explain");
  });

  it("unknown fields -> 400 naming them (a typo is not silently ignored)", async () => {
    await rejects({ candidates: [], topk: 3 }, "topk");
    await rejects({ candidates: [], user: { id: "u", segment: "a" } }, "user.segment");
  });

  it("more than 1000 candidates -> 400 naming candidates", async () => {
    const many = Array.from({ length: 1001 }, (_, i) => ({ id: `c${i}` }));
    await rejects({ candidates: many }, "candidates");
    const limit = await postRerank({ candidates: many.slice(0, 1000) });
    expect(limit.status).toBe(200);
  });

  it("the candidate cap is reachable with realistic rows: 1,000 candidates of 40 features", async () => {
    const rows = candidates(MAX_CANDIDATES).map((c, i) => {
      const features: Record<string, FeatureValue> = { ...c.features };
      for (let f = 0; f < 20; f++) features[`item_numeric_feature_${f}`] = 1234.5678 + i * 0.001 + f;
      for (let f = 0; f < 20; f++)
        features[`item_category_feature_${f}`] = `category-value-${(i * 7 + f) % 997}`;
      return { id: `candidate-${String(i).padStart(6, "0")}`, features };
    });
    const body = JSON.stringify(rerankBody({ candidates: rows }));
    expect(body.length).toBeGreaterThan(1.1 * 1024 * 1024);
    expect(body.length).toBeLessThan(MAX_BODY_BYTES);
    const res = await postRerank(body);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { items: unknown[] }).items).toHaveLength(MAX_CANDIDATES);
  });

  it("a body over 4 MiB -> 413", async () => {
    const big = JSON.stringify({ candidates: candidates(1), pad: "x".repeat(MAX_BODY_BYTES) });
    await problem(await postRerank(big), 413);
    // Without a content-length header (streamed body) the limit still holds.
    const stream = new Blob([big]).stream();
    const res = await worker(new Request("http://mtrank.test/v1/rerank", { method: "POST", body: stream }));
    await problem(res, 413);
  });
});

describe("a body full of mistakes gets a bounded answer", () => {
  const app = createApp({ manifest, model: modelBytes });
  const post = (body: string) =>
    app.fetch(new Request("http://mtrank.test/v1/rerank", { method: "POST", body }), {});
  /** Far above what any 400 for a hand-written mistake needs; far below the isolate's 128 MB. */
  const MAX_PROBLEM_BYTES = 256 * 1024;
  const many = (n: number, item: string) => Array(n).fill(item).join(",");
  const keys = (n: number, value: string) =>
    Array.from({ length: n }, (_, i) => `"k${i}":${value}`).join(",");
  /** Places in a body where every value can be wrong on its own, each one a separate issue. */
  const places: Record<string, (n: number) => string> = {
    candidates: (n) => `{"candidates":[${many(n, "1")}]}`,
    "candidate features": (n) => `{"candidates":[{"id":"a","features":{${keys(n, "{}")}}}]}`,
    "a list feature": (n) => `{"candidates":[{"id":"a","features":{"x":[${many(n, "{}")}]}}]}`,
    "user features": (n) => `{"candidates":[],"user":{"features":{${keys(n, "{}")}}}}`,
    filters: (n) => `{"candidates":[],"filters":[${many(n, "1")}]}`,
    "a filter's list": (n) =>
      `{"candidates":[],"filters":[{"field":"x","op":"in","value":[${many(n, "{}")}]}]}`,
    pinned: (n) => `{"candidates":[],"pinned":[${many(n, "1")}]}`,
    weights: (n) => `{"candidates":[],"weights":{${keys(n, "-1")}}}`,
    "unknown fields": (n) => `{"candidates":[],${keys(n, "1")}}`,
  };

  it("property: wherever the mistakes are and however many, the 400 stays small", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...Object.keys(places)),
        fc.integer({ min: 1, max: 40_000 }),
        async (place, n) => {
          const res = await post(places[place]!(n));
          const text = await res.text();
          expect(res.status).toBe(400);
          expect(text.length).toBeLessThan(MAX_PROBLEM_BYTES);
          const body = JSON.parse(text) as ProblemBody;
          expect(body.errors?.length).toBeGreaterThan(0);
        },
      ),
      { numRuns: 40, seed: 7 },
    );
  });

  it("4 MiB of wrong values -> a small 400 naming the first one, not millions of issues", async () => {
    const n = Math.floor((MAX_BODY_BYTES - 20) / 2);
    const body = places.candidates!(n);
    expect(body.length).toBeLessThanOrEqual(MAX_BODY_BYTES);
    const res = await post(body);
    const text = await res.text();
    expect(res.status).toBe(400);
    expect(text.length).toBeLessThan(MAX_PROBLEM_BYTES);
    expect((JSON.parse(text) as ProblemBody).errors?.[0]?.field).toMatch(/^candidates/);
  });

  it("a body of more objects and arrays than any real request -> 413 before it is parsed", async () => {
    const body = `{"candidates":[],"x":[${Array(MAX_JSON_CONTAINERS).fill("{}").join(",")}]}`;
    expect(body.length).toBeLessThan(MAX_BODY_BYTES);
    const p = await problem(await post(body), 413);
    expect(p.detail).toBe(
      `the request body must hold at most ${MAX_JSON_CONTAINERS} objects and arrays, nested at most ${MAX_JSON_DEPTH} deep`,
    );
    // Nested deeper than any request: refused the same way, however few the containers.
    const deep = `{"candidates":[],"x":${"[".repeat(MAX_JSON_DEPTH)}${"]".repeat(MAX_JSON_DEPTH)}}`;
    await problem(await post(deep), 413);
    // Brackets inside strings are text, not structure.
    const text = `{"candidates":[{"id":"${"[{".repeat(MAX_JSON_CONTAINERS)}"}]}`;
    expect((await post(text)).status).toBe(200);
  });

  it("an unterminated string of escaped quotes is counted in one pass -> 400 invalid JSON", async () => {
    // A scan that restarts at every quote of an unterminated string takes minutes on this.
    const body = `{"candidates":[],"x":"${'\\"'.repeat(1_500_000)}`;
    expect(body.length).toBeLessThan(MAX_BODY_BYTES);
    const p = await problem(await post(body), 400);
    expect(p.type).toBe("urn:mtrank:problem:invalid-json");
  });

  it("an in / not_in list longer than MAX_FILTER_LIST -> 400 naming it", async () => {
    const values = (n: number) => Array.from({ length: n }, (_, i) => `c${i}`);
    const filter = (n: number) =>
      JSON.stringify({
        candidates: candidates(3),
        filters: [{ field: "item_id", op: "not_in", value: values(n) }],
      });
    expect((await post(filter(MAX_FILTER_LIST))).status).toBe(200);
    const p = await problem(await post(filter(MAX_FILTER_LIST + 1)), 400);
    expect(p.errors?.[0]).toEqual({
      field: "filters.0.value",
      message: `at most ${MAX_FILTER_LIST} values in a filter's list`,
    });
  });

  it("a small body still gets every issue it has", async () => {
    const p = await problem(await post(places.candidates!(3)), 400);
    expect(p.errors?.map((e) => e.field)).toEqual(["candidates.0", "candidates.1", "candidates.2"]);
  });
});
