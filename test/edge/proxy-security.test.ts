/**
 * Proxy mode against hostile visitors and origins: requests reach the configured origin and
 * nowhere else, the worker's own namespace and keys stay the worker's, per-visitor answers are
 * never shareable, and origin lists obey the API's limits.
 */
import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, it, type MockInstance, vi } from "vitest";
import { createApp } from "../../edge/app.ts";
import type { EdgeEnv } from "../../edge/env.ts";
import { assignArm, modelSalt, saltState } from "../../edge/model/ab-split.ts";
import { unreservedForm } from "../../edge/proxy/config.ts";
import { upstreamUrl } from "../../edge/proxy/upstream.ts";
import { MAX_CANDIDATES } from "../../edge/rerank/schema.ts";
import { MAX_BODY_BYTES } from "../../edge/routes/rerank.ts";
import modelBytes from "../../fixtures/model/model.onnx";
import { candidates, manifest } from "./requests.ts";

const ORIGIN = "https://origin.test";
const config = {
  origin: ORIGIN,
  routes: [{ path: "/api/feed", list: "items", id: "sku", features: "attrs" }],
  user: { header: "x-visitor" },
};
const feedOf = (n: number) => ({
  items: candidates(n).map((c) => ({ sku: c.id, attrs: c.features })),
});

let fetched: Request[];
let fetchSpy: MockInstance<typeof fetch>;
let logSpy: MockInstance<typeof console.log>;
function originAnswers(answer: (request: Request) => Response | Promise<Response>): void {
  fetchSpy.mockImplementation(async (input, init) => {
    const request = new Request(input, init);
    fetched.push(request);
    return answer(request);
  });
}
const jsonAnswer =
  (body: unknown, headers: Record<string, string> = {}) =>
  () =>
    new Response(JSON.stringify(body), { headers: { "content-type": "application/json", ...headers } });

beforeEach(() => {
  fetched = [];
  fetchSpy = vi.spyOn(globalThis, "fetch");
  logSpy = vi.spyOn(console, "log").mockImplementation(() => undefined);
  originAnswers(jsonAnswer(feedOf(8)));
});
afterEach(() => {
  fetchSpy.mockRestore();
  logSpy.mockRestore();
});

const app = createApp({ manifest, model: modelBytes });
function visit(url: string, init: RequestInit = {}, extra: EdgeEnv = {}): Promise<Response> {
  return Promise.resolve(app.fetch(new Request(url, init), { MTRANK_PROXY: config, ...extra }));
}

describe("proxy upstream", () => {
  it("paths that look like another host still go to the configured origin", async () => {
    const paths = [
      "//evil.test/x",
      "/\\evil.test/x",
      "///evil.test/x",
      "/%2F/evil.test/x",
      "/%2F%2Fevil.test",
      "/../x",
      "/..%2F..%2Fx",
      "/@evil.test",
      "/:@evil.test",
      "/\u00e9v\u00efl.test/\u2603",
      "/\u3002evil.test",
      `/${"a".repeat(16_000)}`,
    ];
    for (const path of paths) {
      const res = await visit(`https://shop.test${path}?q=//evil.test`);
      expect(res.status).toBe(200);
    }
    expect(fetched).toHaveLength(paths.length);
    for (const request of fetched) expect(new URL(request.url).origin).toBe(ORIGIN);
    expect(new URL(fetched[0]!.url).pathname).toBe("//evil.test/x");
  });

  it("property: for any path and query, the upstream origin is the configured one", () => {
    const origin = new URL(ORIGIN);
    const piece = fc.oneof(
      fc.constantFrom(
        "/",
        "//",
        "\\",
        ".",
        "..",
        "%2F",
        "%5C",
        "%2e%2e",
        "@",
        ":",
        "?",
        "#",
        "evil.test",
        "%00",
      ),
      fc.string({ unit: "binary", maxLength: 8 }),
    );
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 12 }), fc.array(piece, { maxLength: 4 }), (p, q) => {
        expect(upstreamUrl(origin, p.join(""), q.join("")).origin).toBe(ORIGIN);
      }),
      { numRuns: 5000, seed: 22 },
    );
  });

  it("/v1/* is the worker's namespace: an unknown path there is a 404 problem, never proxied", async () => {
    for (const path of ["/v1/unknown", "/v1/rerank/extra", "/v1/"]) {
      const res = await visit(`https://shop.test${path}`);
      expect(res.status).toBe(404);
      expect(res.headers.get("content-type")).toBe("application/problem+json");
    }
    const wrongMethod = await visit("https://shop.test/healthz", { method: "POST" });
    expect(wrongMethod.status).toBe(405);
    expect(fetched).toEqual([]);
  });

  it("a header carrying one of the worker's API keys never reaches the origin; the origin's own do", async () => {
    const keys = { MTRANK_API_KEYS: "key-one,key-two" };
    const headers = {
      authorization: "Bearer key-two",
      "x-api-key": "key-one",
      cookie: "session=abc",
      "x-forwarded-auth": "Basic origin-credentials",
      connection: "keep-alive, x-private",
    };
    await visit("https://shop.test/api/feed", { headers }, keys);
    const sent = fetched[0]!.headers;
    expect(sent.get("authorization")).toBeNull();
    expect(sent.get("x-api-key")).toBeNull();
    expect(sent.get("connection")).toBeNull();
    expect(sent.get("cookie")).toBe("session=abc");
    expect(sent.get("x-forwarded-auth")).toBe("Basic origin-credentials");
    // Without worker keys, the visitor's Authorization is the origin's business.
    await visit("https://shop.test/page", { headers: { authorization: "Bearer origin-token" } });
    expect(fetched[1]!.headers.get("authorization")).toBe("Bearer origin-token");
  });

  it("property: connection-level and forwarding headers the visitor sets never reach the origin", async () => {
    // A header name the Connection header lists is hop-by-hop too (RFC 9110 §7.6.1); the
    // forwarding headers describe the visitor to an origin that trusts its proxy, so a visitor
    // must not write them (X-Forwarded-Host: evil.test would have the origin build its links,
    // redirects and cached pages for another host).
    const named = fc.constantFrom("x-private", "x-session-hint", "cookie", "x-visitor", "accept");
    const forwarding = [
      "forwarded",
      "x-forwarded-host",
      "x-forwarded-proto",
      "x-forwarded-port",
      "x-forwarded-prefix",
      "x-forwarded-server",
      "x-forwarded-scheme",
      "x-forwarded-ssl",
      "front-end-https",
      "x-original-url",
      "x-rewrite-url",
      "x-forwarded-uri",
      "x-envoy-original-path",
      "x-original-host",
      "x-http-method-override",
      "x-real-ip",
      "true-client-ip",
    ];
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(named, { minLength: 1, maxLength: 3 }),
        fc.subarray(forwarding, { minLength: 1 }),
        fc.constantFrom("/page", "/api/feed"),
        async (listed, spoofed, path) => {
          fetched = [];
          const headers = new Headers({
            connection: `keep-alive, , @not-a-name, ${listed.map((n) => n.toUpperCase()).join(" ,")}`,
            "proxy-connection": "keep-alive",
            "x-kept": "1",
          });
          for (const name of listed) headers.set(name, "v");
          for (const name of spoofed)
            headers.set(name, name === "forwarded" ? "host=evil.test" : "evil.test");
          await visit(`https://shop.test${path}`, { headers });
          const sent = fetched[0]!.headers;
          for (const name of [...listed, ...spoofed, "connection", "proxy-connection"])
            expect(sent.get(name), name).toBeNull();
          expect(sent.get("x-kept")).toBe("1");
        },
      ),
      { numRuns: 60, seed: 5 },
    );
  });

  it("an origin status outside 200-599 (999, 600: workerd's fetch returns them) -> 502 problem, not a 500", async () => {
    for (const status of [999, 600]) {
      originAnswers(
        () =>
          new Proxy(new Response("blocked", { status: 403 }), {
            get: (target, key) => (key === "status" ? status : Reflect.get(target, key)),
          }),
      );
      for (const path of ["/page", "/api/feed"]) {
        const res = await visit(`https://shop.test${path}`);
        expect(res.status).toBe(502);
        expect(res.headers.get("content-type")).toBe("application/problem+json");
        expect(((await res.json()) as { type: string }).type).toBe("urn:mtrank:problem:origin-bad-status");
      }
    }
  });

  it("redirects come back to the visitor (not followed); the origin's own host is rewritten", async () => {
    originAnswers((r) =>
      new URL(r.url).pathname === "/login"
        ? new Response(null, { status: 302, headers: { location: `${ORIGIN}/account?next=%2F` } })
        : new Response(null, { status: 301, headers: { location: "https://elsewhere.test/x" } }),
    );
    const login = await visit("https://shop.test/login", { headers: { cookie: "session=abc" } });
    expect(login.status).toBe(302);
    expect(login.headers.get("location")).toBe("https://shop.test/account?next=%2F");
    const away = await visit("https://shop.test/moved");
    expect(away.status).toBe(301);
    expect(away.headers.get("location")).toBe("https://elsewhere.test/x");
    expect(fetched.map((r) => r.redirect)).toEqual(["manual", "manual"]);
    expect(fetched).toHaveLength(2);
  });

  it("POST bodies are forwarded as sent", async () => {
    originAnswers(async (r) => new Response(`got ${await r.text()}`));
    const res = await visit("https://shop.test/cart", { method: "POST", body: "sku=1" });
    expect(await res.text()).toBe("got sku=1");
    expect(fetched[0]!.method).toBe("POST");
  });
});

describe("per-visitor caching", () => {
  it("a reranked list is private even when the origin sent no caching headers, with Vary and no ETag", async () => {
    originAnswers(jsonAnswer(feedOf(8), { etag: '"abc"' }));
    const res = await visit("https://shop.test/api/feed", { headers: { "x-visitor": "u-1" } });
    expect(res.headers.get("x-model-version")).toBe(manifest.version);
    expect(res.headers.get("cache-control")).toBe("private");
    expect(res.headers.get("vary")).toBe("x-visitor");
    expect(res.headers.get("etag")).toBeNull();
  });

  it("property: a route spelled with percent-escapes is still the route: reranked and private", async () => {
    // Any letter of the route's path written as %XX (either case of hex), as the origin reads it.
    const spelled = fc
      .array(fc.tuple(fc.boolean(), fc.boolean()), {
        minLength: "/api/feed".length,
        maxLength: "/api/feed".length,
      })
      .map((choices) =>
        [..."/api/feed"]
          .map((ch, i) => {
            const [encoded, lower] = choices[i]!;
            if (!encoded || ch === "/") return ch;
            const hex = ch.charCodeAt(0).toString(16).padStart(2, "0");
            return `%${lower ? hex.toLowerCase() : hex.toUpperCase()}`;
          })
          .join(""),
      );
    await fc.assert(
      fc.asyncProperty(spelled, async (path) => {
        originAnswers(jsonAnswer(feedOf(8)));
        const res = await visit(`https://shop.test${path}`, { headers: { "x-visitor": "u-1" } });
        expect(res.headers.get("x-model-version"), path).toBe(manifest.version);
        expect(res.headers.get("cache-control")).toBe("private");
        expect(res.headers.get("vary")).toBe("x-visitor");
      }),
      { numRuns: 60, seed: 3 },
    );
    // Reserved escapes keep their meaning: %2F is not a segment break, so no route.
    originAnswers(jsonAnswer(feedOf(8)));
    const slash = await visit("https://shop.test/api%2Ffeed", { headers: { "x-visitor": "u-1" } });
    expect(slash.headers.get("x-model-version")).toBeNull();
    expect(unreservedForm("/a%2fb%7e%41")).toBe("/a%2Fb~A");
  });

  it("the origin's no-store is kept; shared-cache directives are dropped", async () => {
    originAnswers(jsonAnswer(feedOf(8), { "cache-control": "no-store, s-maxage=600, public, immutable" }));
    const res = await visit("https://shop.test/api/feed");
    expect(res.headers.get("cache-control")).toBe("no-store");
  });

  it("CDN-targeted caching headers are dropped too: a CDN obeys them over Cache-Control: private", async () => {
    const cdn = {
      "cdn-cache-control": "max-age=600",
      "cloudflare-cdn-cache-control": "max-age=600",
      "surrogate-control": "max-age=600",
    };
    originAnswers(jsonAnswer(feedOf(8), cdn));
    const res = await visit("https://shop.test/api/feed", { headers: { "x-visitor": "u-1" } });
    expect(res.headers.get("x-model-version")).toBe(manifest.version);
    expect(res.headers.get("cache-control")).toBe("private");
    for (const name of Object.keys(cdn)) expect(res.headers.get(name), name).toBeNull();
    const broken = createApp({ manifest, model: new Uint8Array([1, 2, 3]).buffer });
    const fallback = await broken.fetch(new Request("https://shop.test/api/feed"), { MTRANK_PROXY: config });
    expect(fallback.headers.get("x-mtrank-fallback")).toBe("1");
    for (const name of Object.keys(cdn)) expect(fallback.headers.get(name), name).toBeNull();
  });

  it("the fallback answer (model failing) is private too", async () => {
    const broken = createApp({ manifest, model: new Uint8Array([1, 2, 3]).buffer });
    const res = await broken.fetch(new Request("https://shop.test/api/feed"), { MTRANK_PROXY: config });
    expect(res.headers.get("x-mtrank-fallback")).toBe("1");
    expect(res.headers.get("cache-control")).toBe("private");
  });
});

describe("origin lists obey the API's limits", () => {
  it(`more than ${MAX_CANDIDATES} items pass through unchanged, logged`, async () => {
    const long = feedOf(MAX_CANDIDATES + 1);
    originAnswers(jsonAnswer(long));
    const res = await visit("https://shop.test/api/feed");
    expect(res.headers.get("x-model-version")).toBeNull();
    expect(await res.json()).toEqual(long);
    const line = logSpy.mock.calls.map((c) => JSON.parse(String(c[0])) as Record<string, unknown>).at(-1);
    expect(line).toMatchObject({ event: "request", fallback: "origin_list_too_long" });
  });

  it("property: numbers JavaScript cannot hold exactly (64-bit ids) reach the visitor as the origin wrote them", async () => {
    const literal = fc
      .tuple(
        fc.integer({ min: 1, max: 9 }),
        fc.array(fc.integer({ min: 0, max: 9 }), { maxLength: 24, size: "max" }),
      )
      .map(([first, rest]) => `${first}${rest.join("")}`);
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(literal, { minLength: 2, maxLength: 6 }), async (ids) => {
        const items = ids.map((id, i) => `{"sku":${id},"attrs":{"item_price":${i}.5}}`);
        const text = `{"items":[${items.join(",")}],"total":${ids.at(-1)}}`;
        const distinct = new Set(ids.map((id) => String(Number(id)))).size === ids.length;
        originAnswers(() => new Response(text, { headers: { "content-type": "application/json" } }));
        const res = await visit("https://shop.test/api/feed", { headers: { "x-visitor": "u-1" } });
        const back = await res.text();
        for (const id of ids) expect(back).toContain(`"sku":${id}`);
        expect(back).toContain(`"total":${ids.at(-1)}`);
        // Exact ids are still reranked; a lossy one leaves the list as the origin sent it.
        const exact = distinct && ids.every((id) => String(Number(id)) === id);
        expect(res.headers.get("x-model-version") !== null).toBe(exact);
        if (!exact) expect(back).toBe(text);
      }),
      { numRuns: 200, seed: 64 },
    );
    // 1e400 parses to Infinity, which JSON.stringify would write as null.
    const huge = `{"items":[{"sku":"a","attrs":{"item_price":1e400}},{"sku":"b"}]}`;
    originAnswers(() => new Response(huge, { headers: { "content-type": "application/json" } }));
    expect(await (await visit("https://shop.test/api/feed")).text()).toBe(huge);
  });

  it("a streamed body over the byte limit is not buffered whole: it passes through byte for byte", async () => {
    const feed = JSON.stringify({ items: feedOf(4).items, pad: "x".repeat(MAX_BODY_BYTES) });
    const bytes = new TextEncoder().encode(feed);
    const chunk = 64 * 1024;
    originAnswers(() => {
      let at = 0;
      const stream = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (at >= bytes.length) return controller.close();
          controller.enqueue(bytes.slice(at, at + chunk));
          at += chunk;
        },
      });
      return new Response(stream, { headers: { "content-type": "application/json" } });
    });
    const res = await visit("https://shop.test/api/feed");
    expect(res.headers.get("x-model-version")).toBeNull();
    const back = new Uint8Array(await res.arrayBuffer());
    expect(back.length).toBe(bytes.length);
    expect(back.every((b, i) => b === bytes[i])).toBe(true);
    const line = logSpy.mock.calls.map((c) => JSON.parse(String(c[0])) as Record<string, unknown>).at(-1);
    expect(line).toMatchObject({ event: "request", fallback: "origin_list_too_large" });
  });

  it("an origin body that breaks off mid-read -> 502 problem, not a 500", async () => {
    originAnswers(() => {
      let sent = false;
      const stream = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (sent) return controller.error(new Error("origin reset"));
          sent = true;
          controller.enqueue(new TextEncoder().encode('{"items": ['));
        },
      });
      return new Response(stream, { headers: { "content-type": "application/json" } });
    });
    const res = await visit("https://shop.test/api/feed");
    expect(res.status).toBe(502);
    expect(res.headers.get("content-type")).toBe("application/problem+json");
  });
});

describe("the visitor id", () => {
  const challengerManifest = { ...manifest, version: "challenger-v" };
  const abApp = createApp(
    { manifest, model: modelBytes },
    { challenger: { manifest: challengerManifest, model: modelBytes } },
  );
  // Two ids in different arms at 50 %: which arm answers shows which id was read.
  const ids = Array.from({ length: 50 }, (_, i) => `u-${i}`);
  const salt = saltState(modelSalt(challengerManifest));
  const champion = ids.find((id) => assignArm(id, 50, salt) === "champion")!;
  const challenger = ids.find((id) => assignArm(id, 50, salt) === "challenger")!;
  const armOf = async (user: unknown, headers: Record<string, string>, extra: EdgeEnv = {}) => {
    const env: EdgeEnv = { MTRANK_PROXY: { ...config, user }, MTRANK_CHALLENGER_SHARE: "50", ...extra };
    const res = await abApp.fetch(new Request("https://shop.test/api/feed", { headers }), env);
    expect(res.headers.get("x-model-version")).not.toBeNull();
    return { arm: res.headers.get("x-mtrank-arm"), vary: res.headers.get("vary") };
  };

  it("is read only from the sources the config names: a cookie-only config ignores any header", async () => {
    const headers = { cookie: `uid=${champion}`, "x-user-id": challenger, "x-visitor": challenger };
    expect(await armOf({ cookie: "uid" }, headers)).toEqual({ arm: "champion", vary: "cookie" });
    expect(await armOf({ header: "x-visitor" }, headers)).toEqual({ arm: "challenger", vary: "x-visitor" });
  });

  it("a blank header or cookie is no id: the next source, else the champion", async () => {
    const user = { header: "x-visitor", cookie: "uid" };
    const blank = { arm: "champion", vary: "x-visitor, cookie" };
    const share100 = { MTRANK_CHALLENGER_SHARE: "100" };
    expect(await armOf(user, { "x-visitor": " ", cookie: "uid=%20%20" }, share100)).toEqual(blank);
    expect(await armOf(user, { cookie: "uid=%09" }, share100)).toEqual(blank);
    expect((await armOf(user, { "x-visitor": "  ", cookie: `uid=${challenger}` })).arm).toBe("challenger");
  });

  it("no source named -> no visitor id: every visitor gets the champion", async () => {
    const headers = { "x-user-id": challenger, cookie: `uid=${challenger}` };
    expect(await armOf(undefined, headers)).toEqual({ arm: "champion", vary: null });
    expect(await armOf({}, headers)).toEqual({ arm: "champion", vary: null });
  });

  const KEY = "k".repeat(32);
  async function signed(id: string, key = KEY): Promise<string> {
    const hmac = await crypto.subtle.importKey(
      "raw",
      new TextEncoder().encode(key),
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["sign"],
    );
    const mac = new Uint8Array(await crypto.subtle.sign("HMAC", hmac, new TextEncoder().encode(id)));
    const b64 = btoa(String.fromCharCode(...mac));
    return `${id}.${b64.replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "")}`;
  }

  it("signed: an id whose HMAC matches one of MTRANK_VISITOR_KEY's keys is read; anything else is no id", async () => {
    const user = { cookie: "uid", header: "x-visitor", signed: true };
    const keys = { MTRANK_VISITOR_KEY: `old-key-${"o".repeat(24)}, ${KEY}` };
    const good = await signed(challenger);
    expect((await armOf(user, { cookie: `uid=${good}` }, keys)).arm).toBe("challenger");
    expect((await armOf(user, { "x-visitor": good }, keys)).arm).toBe("challenger");
    const forged = [
      challenger,
      `${challenger}.`,
      `${challenger}.${good.slice(-43, -1)}A`,
      `${challenger}x.${good.slice(-43)}`,
      await signed(challenger, "another-key-of-32-characters-xx"),
    ];
    for (const value of forged)
      expect((await armOf(user, { "x-visitor": value }, keys)).arm, value).toBe("champion");
    // No key: nothing verifies (said once), rather than trusting every claim.
    expect((await armOf(user, { "x-visitor": good })).arm).toBe("champion");
    expect((await armOf(user, { "x-visitor": good })).arm).toBe("champion");
    const lines = logSpy.mock.calls
      .map((c) => JSON.parse(String(c[0])) as { event: string; error?: string })
      .filter((l) => l.event === "config.invalid");
    expect(lines.map((l) => l.error)).toEqual([expect.stringMatching(/MTRANK_VISITOR_KEY/)]);
  });

  it("signed: the model's visitor feature gets the bare id, as POST /v1/rerank would", async () => {
    const user = { cookie: "uid", signed: true };
    const features = { user_id: { from: "visitor", side: "user" } };
    originAnswers(jsonAnswer(feedOf(12)));
    const res = await app.fetch(
      new Request("https://shop.test/api/feed", { headers: { cookie: `uid=${await signed("u97")}` } }),
      { MTRANK_PROXY: { ...config, user, features }, MTRANK_VISITOR_KEY: KEY },
    );
    const order = ((await res.json()) as { items: { sku: string }[] }).items.map((i) => i.sku);
    const rerank = async (features: Record<string, string>) => {
      const body = { user: { id: "u97", features }, candidates: candidates(12) };
      const direct = await app.fetch(
        new Request("https://shop.test/v1/rerank", {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(body),
        }),
        {},
      );
      return ((await direct.json()) as { items: { id: string }[] }).items.map((i) => i.id);
    };
    expect(order).toEqual(await rerank({ user_id: "u97" }));
  });
});
