/**
 * CDN proxy mode (MTRANK_PROXY, see proxy/config.ts): whatever the worker's own API does not
 * answer goes to the configured origin, and only there (proxy/upstream.ts). On a configured
 * route a JSON list is reranked for the visitor and leaves as a private, per-visitor answer:
 * `Vary` on the visitor's header/cookie, `Cache-Control: private` (or the origin's no-store) and
 * no strong validator, so no shared cache hands one visitor's order to another. Anything else,
 * and a list the worker cannot or may not rerank (too large, too many items, the model failing),
 * passes through unchanged.
 */
import type { Context, Handler } from "hono";
import { FeatureValueError } from "../../shared/encoder/encode.ts";
import type { EdgeBindings } from "../env.ts";
import { apiKeys } from "../http/api-keys.ts";
import { backgroundOf } from "../http/background.ts";
import { problemResponse } from "../http/problem.ts";
import { readUpTo } from "../http/read-up-to.ts";
import { ServerTiming } from "../http/server-timing.ts";
import { containersAtMost } from "../json-containers.ts";
import { describeError, type RequestLogFields } from "../log.ts";
import type { ModelCatalog } from "../model/catalog.ts";
import { matchRoute, type ProxyConfig, type ProxyRouteConfig, proxyConfig } from "../proxy/config.ts";
import { parseExactJson } from "../proxy/exact-json.ts";
import { findList } from "../proxy/list.ts";
import { upstreamRequest, upstreamUrl, visitorLocation } from "../proxy/upstream.ts";
import { varyOn, visitorFeatures, visitorId } from "../proxy/visitor.ts";
import { rankCandidates, resolveFusion } from "../rerank/rank.ts";
import { MAX_CANDIDATES } from "../rerank/schema.ts";
import { notFound } from "./errors.ts";
import { MAX_BODY_BYTES } from "./rerank.ts";

type Body = ConstructorParameters<typeof Response>[0];

export function proxyRoute(catalog: ModelCatalog): Handler<EdgeBindings> {
  return async (c) => {
    const config = proxyConfig(c.env?.MTRANK_PROXY);
    if (!config) return notFound(c);
    const visitor = new URL(c.req.url);
    const origin = new URL(config.origin);
    const upstream = upstreamUrl(origin, visitor.pathname, visitor.search);
    const secrets = apiKeys(c.env?.MTRANK_API_KEYS).secrets;
    let answer: Response;
    try {
      answer = await fetch(upstreamRequest(c.req.raw, upstream, secrets));
    } catch (error) {
      c.get("log").error = describeError(error);
      return problemResponse({
        status: 502,
        kind: "origin-unreachable",
        title: "Origin unreachable",
        detail: "the origin did not answer",
      });
    }
    // fetch passes on any status an origin sends (999, 600), but a Response can only be built
    // with 200-599: answer for the origin rather than fail with a 500.
    if (answer.status < 200 || answer.status > 599) {
      c.get("log").error = `the origin answered with status ${answer.status}`;
      await answer.body?.cancel().catch(() => undefined);
      return problemResponse({
        status: 502,
        kind: "origin-bad-status",
        title: "Origin answered with an invalid status",
        detail: `the origin answered with status ${answer.status}, outside 200-599`,
      });
    }
    const route = matchRoute(config, visitor.pathname);
    // Copied so that the headers are mutable (fetch's are not) for the middlewares after us.
    const headers = new Headers(answer.headers);
    const location = headers.get("location");
    if (location) headers.set("location", visitorLocation(location, origin, upstream, visitor));
    if (!route) return new Response(answer.body, { status: answer.status, headers });
    return rerankOrigin(c, catalog, config, route, answer, headers);
  };
}

async function rerankOrigin(
  c: Context<EdgeBindings>,
  catalog: ModelCatalog,
  config: ProxyConfig,
  route: ProxyRouteConfig,
  origin: Response,
  headers: Headers,
): Promise<Response> {
  for (const name of varyOn(config)) headers.append("vary", name);
  const passThrough = (body: Body) => new Response(body, { status: origin.status, headers });
  const log = c.get("log");

  const type = headers.get("content-type") ?? "";
  const declared = Number(headers.get("content-length") ?? 0);
  // Only a whole list is reordered: a 206 is a byte range of one (its Content-Range would
  // describe bytes the new order moved), and 204, 205 and 304 have no body to rank.
  if (origin.status !== 200 || !/\bjson\b/i.test(type)) return passThrough(origin.body);
  if (declared > MAX_BODY_BYTES) {
    log.fallback = "origin_list_too_large";
    return passThrough(origin.body);
  }
  let bytes: Uint8Array;
  try {
    const read = await readUpTo(origin.body, MAX_BODY_BYTES);
    if (!read.complete) {
      log.fallback = "origin_list_too_large";
      return passThrough(read.stream);
    }
    bytes = read.bytes;
  } catch (error) {
    log.error = describeError(error);
    return problemResponse({
      status: 502,
      kind: "origin-body-broken",
      title: "Origin body broken",
      detail: "the origin broke off its response",
    });
  }
  let body: unknown;
  try {
    const text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    if (!containersAtMost(text)) {
      log.fallback = "origin_list_too_large";
      return passThrough(bytes);
    }
    body = parseExactJson(text);
  } catch {
    return passThrough(bytes);
  }
  if (body === undefined) return passThrough(bytes);
  const list = findList(body, route);
  if (!list || list.candidates.length === 0) return passThrough(bytes);
  if (list.candidates.length > MAX_CANDIDATES) {
    log.fallback = "origin_list_too_long";
    log.candidates = list.candidates.length;
    return passThrough(bytes);
  }

  const timing = new ServerTiming();
  const user = await visitorId(c.req.raw, config.user, c.env?.MTRANK_VISITOR_KEY);
  const { model, arm, assigned, done } = await catalog.choose(c.env, user, backgroundOf(c));
  try {
    const manifest = model.manifest;
    log.candidates = list.candidates.length;
    log.model = { id: manifest?.id ?? "unavailable", version: manifest?.version ?? "unavailable" };
    log.arm = arm;
    if (assigned !== arm) log.assigned = assigned;
    headers.set("x-model-version", log.model.version);
    headers.set("x-mtrank-arm", arm);
    headers.delete("content-length");
    privateCaching(headers);
    try {
      const loaded = await model.load();
      dropListsOfOneValueFeatures(list.candidates, loaded.manifest.features.features);
      const features = visitorFeatures(c.req.raw, config.features, user);
      const request = {
        candidates: list.candidates,
        user: { ...(user === undefined ? {} : { id: user }), features: features.user },
        context: { features: features.context },
      };
      const defaults = loaded.manifest.fusion.defaults;
      const ranked = await withoutBadVisitorValues(request, log, () =>
        rankCandidates(loaded, request, list.candidates, resolveFusion(request, defaults), timing, (o) => o),
      );
      const position = new Map(list.candidates.map((cand, i) => [cand.id, i]));
      const reordered = ranked.map((item) => list.items[position.get(item.id)!]);
      headers.set("server-timing", timing.header());
      return passThrough(JSON.stringify(list.replace(reordered)));
    } catch (error) {
      log.fallback = "model_unavailable";
      log.error = describeError(error);
      headers.set("x-mtrank-fallback", "1");
      return passThrough(bytes);
    }
  } finally {
    done();
  }
}

/**
 * An origin item's list under a feature that takes one value (a category, a number) reads as
 * missing, as any value the proxy cannot use does; lists stay for bag and vector features. The
 * encoder would refuse it, and one such item would leave the whole list unranked.
 */
function dropListsOfOneValueFeatures(
  candidates: readonly { features?: Record<string, unknown> | undefined }[],
  features: readonly { name: string; kind: string }[],
): void {
  const lists = new Set(
    features.filter((f) => f.kind === "multi_categorical" || f.kind === "vector").map((f) => f.name),
  );
  for (const { features: values } of candidates)
    if (values)
      for (const [name, value] of Object.entries(values))
        if (Array.isArray(value) && !lists.has(name)) delete values[name];
}

/**
 * A visitor's header, cookie or query value its feature cannot take (a number feature sent "abc")
 * is the visitor's own mistake and touches only their list: the value is read as missing and the
 * list still ranks (the log's `ignored` names it), rather than falling back as if the model had
 * failed. A bad value in the origin's items is still a fallback.
 */
async function withoutBadVisitorValues<T>(
  request: { user: { features: Record<string, unknown> }; context: { features: Record<string, unknown> } },
  log: RequestLogFields,
  rank: () => Promise<T>,
): Promise<T> {
  for (;;) {
    try {
      return await rank();
    } catch (error) {
      if (!(error instanceof FeatureValueError)) throw error;
      const side = error.at;
      if ((side !== "user" && side !== "context") || !Object.hasOwn(request[side].features, error.feature))
        throw error;
      // Each pass removes one of the visitor's values, so the loop ends.
      delete request[side].features[error.feature];
      log.ignored = [...(log.ignored ?? []), `${side}.${error.feature}: ${error.reason}`];
    }
  }
}

/**
 * A body made for one visitor must not sit in a shared cache (many CDNs ignore Vary): private
 * unless the origin said no-store, shared-cache directives and CDN-only caching headers
 * (CDN-Cache-Control and the like) dropped, and the origin's ETag (which names the origin's
 * body, not this order) removed so no cache revalidates one visitor's list for another.
 */
function privateCaching(headers: Headers): void {
  const kept = (headers.get("cache-control") ?? "")
    .split(",")
    .map((d) => d.trim())
    .filter((d) => d && !/^(public|s-maxage=|proxy-revalidate|immutable)/i.test(d));
  if (!kept.some((d) => /^(private|no-store)$/i.test(d))) kept.unshift("private");
  headers.set("cache-control", kept.join(", "));
  headers.delete("etag");
  // Caching rules meant for CDNs only, which a CDN obeys over Cache-Control (RFC 9213).
  for (const name of ["cdn-cache-control", "cloudflare-cdn-cache-control", "surrogate-control"])
    headers.delete(name);
}
