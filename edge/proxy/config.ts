/**
 * CDN proxy mode configuration, the MTRANK_PROXY var (a JSON object in wrangler.toml [vars], or
 * that object as a JSON string):
 *   { "origin": "https://shop.example",
 *     "routes": [ { "path": "/api/feed", "list": "data.items", "id": "sku", "features": "attrs" } ],
 *     "user": { "cookie": "uid", "signed": true },
 *     "features": { "user_id": { "from": "visitor", "side": "user" },
 *                   "device": { "from": "header", "name": "x-device" },
 *                   "country": { "from": "cf", "name": "country" } } }
 * Requests the worker's own API does not answer go to the origin; responses on a route's path
 * have the JSON array at `list` reranked for the visitor, the rest pass through unchanged.
 * `features` fills the model's user and context features from the visitor's request: the
 * visitor id, a header, a cookie, a query parameter, or a field of Cloudflare's `request.cf`
 * (country, city, timezone, ...). Side "context" unless given.
 * The visitor id is read only from the header and/or cookie `user` names: whatever a visitor
 * sends there is theirs to choose unless `signed` asks for an HMAC signature (proxy/visitor.ts).
 */
import * as v from "valibot";
import { describeIssues, formatIssue } from "../../shared/validation.ts";
import { describeError, logLine } from "../log.ts";

const Name = v.pipe(v.string(), v.minLength(1));

const ProxyRoute = v.strictObject({
  /** Exact path, or a prefix ending in "*" ("/api/feed/*"). */
  path: v.pipe(v.string(), v.startsWith("/", 'expected a path starting with "/"')),
  /** Dot path of the array in the JSON body ("" when the body is the array). */
  list: v.optional(v.string(), ""),
  /** Field of each item holding its id (default "id"). */
  id: v.optional(Name, "id"),
  /** Field of each item holding its features; absent: the item's own scalar fields are its features. */
  features: v.optional(Name),
});

const FeatureSource = v.variant("from", [
  v.strictObject({
    from: v.literal("visitor"),
    side: v.optional(v.picklist(["user", "context"]), "context"),
  }),
  v.strictObject({
    from: v.picklist(["header", "cookie", "query", "cf"]),
    name: Name,
    side: v.optional(v.picklist(["user", "context"]), "context"),
  }),
]);

/**
 * An http(s) origin: scheme, host and port, nothing else. A path, query or credentials would be
 * merged with every visitor's request in ways nobody configured on purpose.
 */
const Origin = v.pipe(
  v.string(),
  v.url("expected an absolute URL"),
  v.check((s) => {
    // valibot runs every check of a pipe, so this one also sees strings v.url refused.
    if (!URL.canParse(s)) return true;
    const u = new URL(s);
    return (
      (u.protocol === "https:" || u.protocol === "http:") &&
      u.username === "" &&
      u.password === "" &&
      u.pathname === "/" &&
      u.search === "" &&
      u.hash === ""
    );
  }, 'expected an http(s) origin with no path, query or credentials, such as "https://shop.example"'),
);

const ProxyConfigSchema = v.strictObject({
  origin: Origin,
  routes: v.pipe(v.array(ProxyRoute), v.minLength(1, "expected at least one route")),
  /**
   * Where the visitor id comes from: the header, else the cookie, each read only when named (no
   * source named: no visitor id). `signed`: the value is `<id>.<signature>`, checked against
   * MTRANK_VISITOR_KEY; one that fails reads as no id.
   */
  user: v.optional(
    v.strictObject({
      header: v.optional(Name),
      cookie: v.optional(Name),
      signed: v.optional(v.boolean(), false),
    }),
    { signed: false },
  ),
  /** Model feature name -> where its value comes from in the visitor's request. */
  features: v.optional(v.record(Name, FeatureSource), {}),
});

export type ProxyConfig = v.InferOutput<typeof ProxyConfigSchema>;
export type ProxyRouteConfig = ProxyConfig["routes"][number];
export type FeatureSourceConfig = ProxyConfig["features"][string];

export class ProxyConfigError extends Error {
  override name = "ProxyConfigError";
}

const parsed = new Map<string, ProxyConfig | undefined>();
const parsedObjects = new WeakMap<object, { config: ProxyConfig | undefined }>();

/**
 * The checked config (cached per distinct value), undefined when proxy mode is off. A bad value
 * is logged once and must not take the site down: when its origin alone is usable, requests pass
 * through to it unreranked (no routes); when even that is not, proxy mode is off.
 */
export function proxyConfig(raw: unknown): ProxyConfig | undefined {
  if (raw === undefined || raw === "") return undefined;
  // A [vars] object is the same object on every request: found without serialising it again.
  const byObject = typeof raw === "object" && raw !== null ? parsedObjects.get(raw) : undefined;
  if (byObject) return byObject.config;
  const key = typeof raw === "string" ? raw : JSON.stringify(raw);
  if (parsed.has(key)) return remember(raw, parsed.get(key));
  let config: ProxyConfig | undefined;
  try {
    config = checkedConfig(raw);
  } catch (error) {
    config = passThroughConfig(raw);
    logLine("error", "config.invalid", {
      error: describeError(error),
      proxy: config ? `passing requests through to ${config.origin} unreranked` : "off",
    });
  }
  // Bounded: one entry per distinct MTRANK_PROXY value, which only a deployment changes.
  parsed.set(key, config);
  return remember(raw, config);
}

function remember(raw: unknown, config: ProxyConfig | undefined): ProxyConfig | undefined {
  if (typeof raw === "object" && raw !== null) parsedObjects.set(raw, { config });
  return config;
}

function jsonValue(raw: unknown): unknown {
  if (typeof raw !== "string") return raw;
  try {
    return JSON.parse(raw);
  } catch (error) {
    throw new ProxyConfigError(`MTRANK_PROXY is not JSON: ${String(error)}`);
  }
}

function checkedConfig(raw: unknown): ProxyConfig {
  const result = v.safeParse(ProxyConfigSchema, jsonValue(raw));
  if (!result.success)
    throw new ProxyConfigError(`MTRANK_PROXY: ${describeIssues(result.issues).map(formatIssue).join("; ")}`);
  return result.output;
}

function passThroughConfig(raw: unknown): ProxyConfig | undefined {
  let origin: unknown;
  try {
    origin = (jsonValue(raw) as { origin?: unknown } | null)?.origin;
  } catch {
    return undefined;
  }
  if (!v.is(Origin, origin)) return undefined;
  return { origin, routes: [], user: { signed: false }, features: {} };
}

/**
 * The route a path is on, compared in normal form (unreservedForm): the origin reads `/%61pi/feed`
 * as `/api/feed`, so the worker must too, or a visitor could step around a route's reranking and
 * its private caching by spelling the path differently.
 */
export function matchRoute(config: ProxyConfig, path: string): ProxyRouteConfig | undefined {
  const normal = unreservedForm(path);
  return config.routes.find((r) => {
    const route = unreservedForm(r.path);
    return route.endsWith("*") ? normal.startsWith(route.slice(0, -1)) : normal === route;
  });
}

/**
 * A path with its percent-encoded unreserved characters (letters, digits, `-._~`) decoded and the
 * other escapes' hex digits upper-cased: RFC 3986 §6.2.2's equivalent spelling of the same path.
 * Reserved escapes (`%2F`) stay encoded: decoding them would change which segments there are.
 */
export function unreservedForm(path: string): string {
  if (!path.includes("%")) return path;
  return path.replace(/%([0-9a-fA-F]{2})/g, (_, hex: string) => {
    const char = String.fromCharCode(Number.parseInt(hex, 16));
    return /[A-Za-z0-9\-._~]/.test(char) ? char : `%${hex.toUpperCase()}`;
  });
}
