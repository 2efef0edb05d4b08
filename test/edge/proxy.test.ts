/** CDN proxy mode (MTRANK_PROXY): origin lists reranked per visitor, everything else untouched. */
import { afterEach, beforeEach, describe, expect, it, type MockInstance, vi } from "vitest";
import { createApp } from "../../edge/app.ts";
import type { EdgeEnv } from "../../edge/env.ts";
import { MAX_JSON_CONTAINERS, MAX_JSON_DEPTH } from "../../edge/json-containers.ts";
import modelBytes from "../../fixtures/model/model.onnx";
import featuresManifestJson from "../../fixtures/model-features/manifest.json";
import featuresModel from "../../fixtures/model-features/model.onnx";
import type { ModelManifest } from "../../shared/manifest.ts";
import { candidates, manifest, postRerank, type RerankBody } from "./requests.ts";

const ORIGIN = "https://origin.test";
const { factorised: _section, ...featuresManifest } = featuresManifestJson as unknown as ModelManifest;
const config = {
  origin: ORIGIN,
  routes: [{ path: "/api/feed", list: "data.items", id: "sku", features: "attrs" }],
  user: { header: "x-visitor", cookie: "uid" },
};
const list = candidates(12);
const feed = {
  page: 3,
  data: { items: list.map((c) => ({ sku: c.id, title: `Item ${c.id}`, attrs: c.features })), total: 12 },
};

type Origin = (request: Request) => Response;
let fetched: Request[];
let fetchSpy: MockInstance<typeof fetch>;
let logSpy: MockInstance<typeof console.log>;
function originAnswers(answer: Origin): void {
  fetchSpy.mockImplementation(async (input, init) => {
    const request = new Request(input, init);
    fetched.push(request);
    return answer(request);
  });
}
const jsonFeed: Origin = () =>
  new Response(JSON.stringify(feed), {
    headers: {
      "content-type": "application/json; charset=utf-8",
      "cache-control": "public, max-age=60, s-maxage=300",
      etag: '"v1"',
    },
  });

beforeEach(() => {
  fetched = [];
  fetchSpy = vi.spyOn(globalThis, "fetch");
  logSpy = vi.spyOn(console, "log").mockImplementation(() => undefined);
  originAnswers(jsonFeed);
});
afterEach(() => {
  fetchSpy.mockRestore();
  logSpy.mockRestore();
});

function proxy(extra: EdgeEnv = {}, model: ArrayBuffer = modelBytes) {
  const app = createApp(
    { manifest, model },
    { challenger: { manifest: { ...manifest, version: "challenger-v" }, model } },
  );
  const env: EdgeEnv = { MTRANK_PROXY: config, ...extra };
  return async (path: string, headers: Record<string, string> = {}) =>
    app.fetch(new Request(`https://shop.test${path}`, { headers }), env);
}

describe("CDN proxy mode", () => {
  it("reranks the configured list for the visitor, keeping the rest of the body", async () => {
    const res = await proxy()("/api/feed?page=3", { "x-visitor": "u-42" });
    expect(res.status).toBe(200);
    expect(fetched.map((r) => r.url)).toEqual([`${ORIGIN}/api/feed?page=3`]);
    expect(fetched[0]!.headers.get("x-visitor")).toBe("u-42");
    const body = (await res.json()) as typeof feed;
    expect(body.page).toBe(3);
    expect(body.data.total).toBe(12);

    // The same order POST /v1/rerank gives these candidates.
    const direct = createApp({ manifest, model: modelBytes });
    const expected = (await (
      await postRerank({ user: { id: "u-42" }, candidates: list }, async (r) => direct.fetch(r, {}))
    ).json()) as RerankBody;
    expect(body.data.items.map((i) => i.sku)).toEqual(expected.items.map((i) => i.id));
    expect(body.data.items.map((i) => i.sku)).not.toEqual(list.map((c) => c.id));
    expect([...body.data.items].sort((a, b) => a.sku.localeCompare(b.sku))).toEqual(
      [...feed.data.items].sort((a, b) => a.sku.localeCompare(b.sku)),
    );
  });

  it("per-visitor caching headers: Vary on the visitor header and cookie, private Cache-Control", async () => {
    const res = await proxy()("/api/feed", { "x-visitor": "u-1" });
    expect(res.headers.get("vary")?.toLowerCase().split(/,\s*/)).toEqual(["x-visitor", "cookie"]);
    expect(res.headers.get("cache-control")).toBe("private, max-age=60");
    // The origin's strong validator names its body, not this visitor's order.
    expect(res.headers.get("etag")).toBeNull();
    expect(res.headers.get("x-model-version")).toBe(manifest.version);
    expect(res.headers.get("content-type")).toBe("application/json; charset=utf-8");
  });

  it("the visitor comes from the header, else the cookie; it picks the A/B arm", async () => {
    const fetch = proxy({ MTRANK_CHALLENGER_SHARE: "100" });
    expect((await fetch("/api/feed", { cookie: "a=1; uid=u%2D7; b=2" })).headers.get("x-mtrank-arm")).toBe(
      "challenger",
    );
    expect((await fetch("/api/feed", { "x-visitor": "u-8" })).headers.get("x-mtrank-arm")).toBe("challenger");
    expect((await fetch("/api/feed")).headers.get("x-mtrank-arm")).toBe("champion");
  });

  it("other paths, and responses that are not the expected list, pass through unchanged", async () => {
    originAnswers((r) =>
      r.url.endsWith("/logo.png")
        ? new Response(new Uint8Array([137, 80, 78, 71]), {
            headers: { "content-type": "image/png", "cache-control": "public, max-age=9" },
          })
        : new Response("not here", { status: 404, headers: { "content-type": "text/plain" } }),
    );
    const fetch = proxy();
    const png = await fetch("/logo.png");
    expect(new Uint8Array(await png.arrayBuffer())).toEqual(new Uint8Array([137, 80, 78, 71]));
    expect(png.headers.get("cache-control")).toBe("public, max-age=9");
    expect(png.headers.get("vary")).toBeNull();
    const missing = await fetch("/api/feed");
    expect(missing.status).toBe(404);
    expect(await missing.text()).toBe("not here");

    const odd = [
      { data: { items: "none" } },
      { data: { items: [{ title: "no sku" }] } },
      { data: { items: [{ sku: "a" }, { sku: "a" }] } },
    ];
    for (const body of odd) {
      originAnswers(
        () => new Response(JSON.stringify(body), { headers: { "content-type": "application/json" } }),
      );
      const res = await fetch("/api/feed");
      expect(await res.json()).toEqual(body);
      expect(res.headers.get("x-model-version")).toBeNull();
    }
  });

  it("a model that cannot serve -> the origin's body unchanged, x-mtrank-fallback: 1", async () => {
    const res = await proxy({}, new Uint8Array([1, 2, 3]).buffer)("/api/feed", { "x-visitor": "u-1" });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-mtrank-fallback")).toBe("1");
    expect(await res.json()).toEqual(feed);
  });

  it("the worker's own API is not proxied; without MTRANK_PROXY unknown paths are 404", async () => {
    const fetch = proxy();
    expect((await fetch("/healthz")).status).toBe(200);
    expect(fetched).toEqual([]);
    const plain = createApp({ manifest, model: modelBytes });
    expect((await plain.fetch(new Request("https://shop.test/api/feed"), {})).status).toBe(404);
  });

  it("an origin that cannot be reached -> 502 problem+json, logged", async () => {
    fetchSpy.mockRejectedValue(new TypeError("connection refused"));
    const res = await proxy()("/api/feed");
    expect(res.status).toBe(502);
    expect(res.headers.get("content-type")).toBe("application/problem+json");
    const line = logSpy.mock.calls.map((c) => JSON.parse(String(c[0])) as Record<string, unknown>).at(-1);
    expect(line).toMatchObject({ event: "request", status: 502, error: "TypeError: connection refused" });
    // The origin's address is the operator's to know, not every visitor's.
    const problem = JSON.stringify(await res.json());
    expect(problem).not.toContain("origin.test");
  });

  it("fills user and context features from the visitor's request, as POST /v1/rerank would get them", async () => {
    const withFeatures = {
      ...config,
      features: {
        user_id: { from: "visitor", side: "user" },
        user_segment: { from: "cookie", name: "seg", side: "user" },
        device: { from: "header", name: "X-Device" },
        hour: { from: "query", name: "h" },
      },
    };
    const fetch = proxy({ MTRANK_PROXY: withFeatures });
    const res = await fetch("/api/feed?h=21", { "x-visitor": "u97", cookie: "seg=s3", "x-device": "mobile" });
    const body = (await res.json()) as typeof feed;
    const direct = createApp({ manifest, model: modelBytes });
    const rerank = async (request: unknown) =>
      (await (await postRerank(request, async (r) => direct.fetch(r, {}))).json()) as RerankBody;
    const expected = await rerank({
      user: { id: "u97", features: { user_id: "u97", user_segment: "s3" } },
      context: { features: { device: "mobile", hour: "21" } },
      candidates: list,
    });
    expect(body.data.items.map((i) => i.sku)).toEqual(expected.items.map((i) => i.id));
    // The features change the scores: without them the model sees missing values.
    const without = await rerank({ user: { id: "u97" }, candidates: list });
    expect(expected.items.map((i) => i.score)).not.toEqual(without.items.map((i) => i.score));
    expect(res.headers.get("vary")?.toLowerCase().split(/,\s*/)).toEqual(["x-visitor", "cookie", "x-device"]);
  });

  it("a visitor value its feature cannot take reads as missing: the list still ranks, the log names it", async () => {
    const withActivity = {
      ...config,
      features: {
        user_activity: { from: "header", name: "X-Act", side: "user" },
        device: { from: "header", name: "X-Device" },
      },
    };
    const fetch = proxy({ MTRANK_PROXY: withActivity });
    const res = await fetch("/api/feed", { "x-visitor": "u5", "x-act": "abc", "x-device": "mobile" });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-mtrank-fallback")).toBeNull();
    const body = (await res.json()) as typeof feed;
    // The order POST /v1/rerank gives without the bad value.
    const direct = createApp({ manifest, model: modelBytes });
    const expected = (await (
      await postRerank(
        { user: { id: "u5" }, context: { features: { device: "mobile" } }, candidates: list },
        async (r) => direct.fetch(r, {}),
      )
    ).json()) as RerankBody;
    expect(body.data.items.map((i) => i.sku)).toEqual(expected.items.map((i) => i.id));
    const line = logSpy.mock.calls
      .map((c) => JSON.parse(String(c[0])) as Record<string, unknown>)
      .find((l) => l.path === "/api/feed");
    expect(line).toMatchObject({
      level: "info",
      status: 200,
      ignored: ['user.user_activity: "abc" is not a number'],
    });
    expect(line?.fallback).toBeUndefined();
  });

  it("a bag or vector feature in the origin's items is read as /v1/rerank reads it", async () => {
    const withLists = createApp({ manifest: featuresManifest, model: featuresModel });
    const env: EdgeEnv = { MTRANK_PROXY: config };
    const items = Array.from({ length: 8 }, (_, i) => ({
      sku: `s${i}`,
      attrs: {
        item_id: `i${i * 7}`,
        item_tags: [`t${i % 5}`, `t${(i * 3) % 11}`],
        item_vec: [i / 4, -1, 0.5, i % 3],
        price: 10 + i,
      },
    }));
    originAnswers(() => Response.json({ data: { items } }));
    const res = await withLists.fetch(
      new Request("https://shop.test/api/feed", { headers: { "x-visitor": "u-3" } }),
      env,
    );
    expect(res.headers.get("x-mtrank-fallback")).toBeNull();
    const order = ((await res.json()) as { data: { items: { sku: string }[] } }).data.items.map((i) => i.sku);
    const rerank = async (candidates: unknown[]) =>
      (
        (await (
          await postRerank({ user: { id: "u-3" }, candidates }, async (r) => withLists.fetch(r, {}))
        ).json()) as RerankBody
      ).items;
    const direct = await rerank(items.map((i) => ({ id: i.sku, features: i.attrs })));
    expect(order).toEqual(direct.map((i) => i.id));
    // The lists count: without them the model reads the features as missing and scores otherwise.
    const bare = await rerank(
      items.map((i) => ({ id: i.sku, features: { item_id: i.attrs.item_id, price: i.attrs.price } })),
    );
    expect(direct.map((i) => i.score)).not.toEqual(bare.map((i) => i.score));
  });

  it("an origin item's list under a one-value feature reads as missing; the list still ranks", async () => {
    const app = createApp({ manifest: featuresManifest, model: featuresModel });
    const items = Array.from({ length: 6 }, (_, i) => ({
      sku: `s${i}`,
      attrs: {
        item_id: i === 2 ? ["i1", "i2"] : `i${i}`,
        item_tags: [`t${i}`],
        price: i === 4 ? [5, 6] : 10 + i,
      },
    }));
    originAnswers(() => Response.json({ data: { items } }));
    const res = await app.fetch(new Request("https://shop.test/api/feed"), { MTRANK_PROXY: config });
    expect(res.headers.get("x-mtrank-fallback")).toBeNull();
    const order = ((await res.json()) as { data: { items: { sku: string }[] } }).data.items.map((i) => i.sku);
    const read = items.map((i) => ({
      id: i.sku,
      features: Object.fromEntries(
        Object.entries(i.attrs).filter(([name, v]) => name === "item_tags" || !Array.isArray(v)),
      ),
    }));
    const direct = (await (
      await postRerank({ candidates: read }, async (r) => app.fetch(r, {}))
    ).json()) as RerankBody;
    expect(order).toEqual(direct.items.map((i) => i.id));
  });

  it("a partial, empty or unchanged answer on a route passes through as the origin sent it", async () => {
    const text = JSON.stringify(feed);
    originAnswers(
      (r) =>
        ({
          "bytes=0-": new Response(text, {
            status: 206,
            headers: {
              "content-type": "application/json",
              "content-range": `bytes 0-${text.length - 1}/${text.length}`,
            },
          }),
          none: new Response(null, { status: 204, headers: { "content-type": "application/json" } }),
          same: new Response(null, {
            status: 304,
            headers: { "content-type": "application/json", etag: '"v1"' },
          }),
        })[r.headers.get("range") ?? r.headers.get("x-case") ?? ""]!,
    );
    const fetch = proxy();
    const partial = await fetch("/api/feed", { range: "bytes=0-" });
    expect(partial.status).toBe(206);
    expect(partial.headers.get("x-model-version")).toBeNull();
    expect(partial.headers.get("content-range")).toBe(`bytes 0-${text.length - 1}/${text.length}`);
    expect(await partial.text()).toBe(text);
    const empty = await fetch("/api/feed", { "x-case": "none" });
    expect([empty.status, await empty.text()]).toEqual([204, ""]);
    const same = await fetch("/api/feed", { "x-case": "same" });
    expect([same.status, await same.text()]).toEqual([304, ""]);
  });

  it("an origin list of more objects and arrays than any real one, or nested deeper, passes through unparsed", async () => {
    const many = `{"data":{"items":[${Array(MAX_JSON_CONTAINERS).fill('{"sku":"a"}').join(",")}]}}`;
    const deep = `{"data":{"items":[{"sku":"a","x":${"[".repeat(MAX_JSON_DEPTH)}${"]".repeat(MAX_JSON_DEPTH)}}]}}`;
    for (const body of [many, deep]) {
      originAnswers(() => new Response(body, { headers: { "content-type": "application/json" } }));
      const res = await proxy()("/api/feed");
      expect(res.status).toBe(200);
      expect(await res.text()).toBe(body);
      const line = logSpy.mock.calls.map((c) => JSON.parse(String(c[0])) as Record<string, unknown>).at(-1);
      expect(line?.fallback).toBe("origin_list_too_large");
    }
  });

  it("a feature source the config cannot use -> logged once naming the field, pages pass through", async () => {
    const bad = { ...config, features: { device: { from: "ua", name: "x" } } };
    const fetch = proxy({ MTRANK_PROXY: bad });
    for (let i = 0; i < 3; i++) {
      const res = await fetch("/api/feed");
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual(feed);
      expect(res.headers.get("x-model-version")).toBeNull();
    }
    expect(fetched.map((r) => r.url)).toEqual(Array(3).fill(`${ORIGIN}/api/feed`));
    const lines = logSpy.mock.calls
      .map((c) => JSON.parse(String(c[0])) as { event: string; error?: string; proxy?: string })
      .filter((l) => l.event === "config.invalid");
    expect(lines).toHaveLength(1);
    expect(lines[0]?.error).toMatch(/MTRANK_PROXY: features\.device\.from/);
    expect(lines[0]?.proxy).toBe(`passing requests through to ${ORIGIN} unreranked`);
  });

  it("an MTRANK_PROXY without a usable origin -> proxy mode off (404), logged once naming the field", async () => {
    for (const origin of [
      "not a url",
      "ftp://origin.test",
      "https://user:pw@origin.test",
      "https://origin.test/base",
    ]) {
      const fetch = proxy({ MTRANK_PROXY: JSON.stringify({ origin, routes: [] }) });
      const res = await fetch("/api/feed");
      expect(res.status).toBe(404);
      expect(res.headers.get("content-type")).toBe("application/problem+json");
      await fetch("/other");
    }
    const lines = logSpy.mock.calls
      .map((c) => JSON.parse(String(c[0])) as { event: string; error?: string; proxy?: string })
      .filter((l) => l.event === "config.invalid");
    expect(lines).toHaveLength(4);
    expect(lines[0]?.error).toMatch(/MTRANK_PROXY: origin: expected an absolute URL/);
    expect(lines[1]?.error).toMatch(/MTRANK_PROXY: origin: expected an http\(s\) origin/);
    expect(lines.every((l) => l.proxy === "off")).toBe(true);
    expect(fetched).toEqual([]);
  });
});
