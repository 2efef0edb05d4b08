/**
 * CDN proxy mode (MTRANK_PROXY, see proxy/config.ts): whatever the worker's own API does not
 * answer goes to the origin. On a configured route a JSON response has its list reranked for
 * the visitor and gets `Vary` on the visitor's header/cookie and a private Cache-Control, so no
 * shared cache hands one visitor's order to another; anything else passes through unchanged.
 * The model failing, or a body that is not the expected list, also passes through unchanged.
 */
import type { Context, Handler } from "hono";
import type { EdgeBindings } from "../env.ts";
import { backgroundOf } from "../http/background.ts";
import { problemResponse } from "../http/problem.ts";
import { ServerTiming } from "../http/server-timing.ts";
import { describeError, logLine } from "../log.ts";
import type { ModelCatalog } from "../model/catalog.ts";
import { matchRoute, type ProxyConfig, type ProxyRouteConfig, proxyConfig } from "../proxy/config.ts";
import { findList } from "../proxy/list.ts";
import { varyOn, visitorFeatures, visitorId } from "../proxy/visitor.ts";
import { rankCandidates, resolveFusion } from "../rerank/rank.ts";
import { notFound } from "./errors.ts";

/** Origin bodies larger than this pass through unreranked. */
const MAX_ORIGIN_BYTES = 5 * 1024 * 1024;

export function proxyRoute(catalog: ModelCatalog): Handler<EdgeBindings> {
  return async (c) => {
    let config: ProxyConfig | undefined;
    try {
      config = proxyConfig(c.env?.MTRANK_PROXY);
    } catch (error) {
      logLine("error", "config.invalid", { error: describeError(error) });
      return problemResponse({
        status: 500,
        kind: "proxy-config",
        title: "Proxy misconfigured",
        detail: "MTRANK_PROXY is invalid; the error was logged",
      });
    }
    if (!config) return notFound(c);
    const url = new URL(c.req.url);
    let origin: Response;
    try {
      origin = await fetch(new Request(new URL(url.pathname + url.search, config.origin), c.req.raw));
    } catch (error) {
      c.get("log").error = describeError(error);
      return problemResponse({
        status: 502,
        kind: "origin-unreachable",
        title: "Origin unreachable",
        detail: `the origin ${config.origin} did not answer`,
      });
    }
    const route = matchRoute(config, url.pathname);
    // Copied so that the headers are mutable (fetch's are not) for the middlewares after us.
    if (!route) return new Response(origin.body, origin);
    return rerankOrigin(c, catalog, config, route, origin);
  };
}

async function rerankOrigin(
  c: Context<EdgeBindings>,
  catalog: ModelCatalog,
  config: ProxyConfig,
  route: ProxyRouteConfig,
  origin: Response,
): Promise<Response> {
  const headers = new Headers(origin.headers);
  for (const name of varyOn(config)) headers.append("vary", name);
  const passThrough = (body: ConstructorParameters<typeof Response>[0]) =>
    new Response(body, { status: origin.status, headers });

  const type = headers.get("content-type") ?? "";
  const declared = Number(headers.get("content-length") ?? 0);
  if (!origin.ok || !/\bjson\b/i.test(type) || declared > MAX_ORIGIN_BYTES) return passThrough(origin.body);
  const text = await origin.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return passThrough(text);
  }
  const list = text.length <= MAX_ORIGIN_BYTES ? findList(body, route) : undefined;
  if (!list || list.candidates.length === 0) return passThrough(text);

  const timing = new ServerTiming();
  const user = visitorId(c.req.raw, config.user);
  const { model, arm } = await catalog.choose(c.env, user, backgroundOf(c));
  const manifest = model.manifest;
  const log = c.get("log");
  log.candidates = list.candidates.length;
  log.model = { id: manifest?.id ?? "unavailable", version: manifest?.version ?? "unavailable" };
  log.arm = arm;
  headers.set("x-model-version", log.model.version);
  headers.set("x-mtrank-arm", arm);
  headers.delete("content-length");
  privateCaching(headers);
  try {
    const loaded = await model.load();
    const features = visitorFeatures(c.req.raw, config.features, user);
    const request = {
      candidates: list.candidates,
      user: { ...(user === undefined ? {} : { id: user }), features: features.user },
      context: { features: features.context },
    };
    const defaults = loaded.manifest.fusion.defaults;
    const ranked = await rankCandidates(
      loaded,
      request,
      list.candidates,
      resolveFusion(request, defaults),
      timing,
      (o) => o,
    );
    const position = new Map(list.candidates.map((cand, i) => [cand.id, i]));
    const reordered = ranked.map((item) => list.items[position.get(item.id)!]);
    headers.set("server-timing", timing.header());
    return passThrough(JSON.stringify(list.replace(reordered)));
  } catch (error) {
    log.fallback = "model_unavailable";
    log.error = describeError(error);
    headers.set("x-mtrank-fallback", "1");
    return passThrough(text);
  }
}

/** A body made for one visitor must not sit in a shared cache (many CDNs ignore Vary). */
function privateCaching(headers: Headers): void {
  const cc = headers.get("cache-control");
  if (!cc) return;
  const kept = cc
    .split(",")
    .map((d) => d.trim())
    .filter((d) => d && !/^(public|s-maxage=|proxy-revalidate)/i.test(d));
  if (!kept.some((d) => /^(private|no-store)$/i.test(d))) kept.unshift("private");
  headers.set("cache-control", kept.join(", "));
}
