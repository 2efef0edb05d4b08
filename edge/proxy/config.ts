/**
 * CDN proxy mode configuration, the MTRANK_PROXY var (a JSON object in wrangler.toml [vars], or
 * that object as a JSON string):
 *   { "origin": "https://shop.example",
 *     "routes": [ { "path": "/api/feed", "list": "data.items", "id": "sku", "features": "attrs" } ],
 *     "user": { "header": "x-user-id", "cookie": "uid" },
 *     "features": { "user_id": { "from": "visitor", "side": "user" },
 *                   "device": { "from": "header", "name": "x-device" },
 *                   "country": { "from": "cf", "name": "country" } } }
 * Requests the worker's own API does not answer go to the origin; responses on a route's path
 * have the JSON array at `list` reranked for the visitor, the rest pass through unchanged.
 * `features` fills the model's user and context features from the visitor's request: the
 * visitor id, a header, a cookie, a query parameter, or a field of Cloudflare's `request.cf`
 * (country, city, timezone, ...). Side "context" unless given.
 */
import * as v from "valibot";
import { describeIssues, formatIssue } from "../../shared/validation.ts";

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

const ProxyConfigSchema = v.strictObject({
  origin: v.pipe(v.string(), v.url("expected an absolute URL")),
  routes: v.pipe(v.array(ProxyRoute), v.minLength(1, "expected at least one route")),
  user: v.optional(v.strictObject({ header: v.optional(Name, "x-user-id"), cookie: v.optional(Name) }), {
    header: "x-user-id",
  }),
  /** Model feature name -> where its value comes from in the visitor's request. */
  features: v.optional(v.record(Name, FeatureSource), {}),
});

export type ProxyConfig = v.InferOutput<typeof ProxyConfigSchema>;
export type ProxyRouteConfig = ProxyConfig["routes"][number];
export type FeatureSourceConfig = ProxyConfig["features"][string];

export class ProxyConfigError extends Error {
  override name = "ProxyConfigError";
}

const parsed = new Map<string, ProxyConfig>();

/** The checked config (cached per distinct value), undefined when proxy mode is off. */
export function proxyConfig(raw: unknown): ProxyConfig | undefined {
  if (raw === undefined || raw === "") return undefined;
  const key = typeof raw === "string" ? raw : JSON.stringify(raw);
  let config = parsed.get(key);
  if (!config) {
    let value: unknown = raw;
    if (typeof raw === "string")
      try {
        value = JSON.parse(raw);
      } catch (error) {
        throw new ProxyConfigError(`MTRANK_PROXY is not JSON: ${String(error)}`);
      }
    const result = v.safeParse(ProxyConfigSchema, value);
    if (!result.success)
      throw new ProxyConfigError(
        `MTRANK_PROXY: ${describeIssues(result.issues).map(formatIssue).join("; ")}`,
      );
    config = result.output;
    parsed.set(key, config);
  }
  return config;
}

export function matchRoute(config: ProxyConfig, path: string): ProxyRouteConfig | undefined {
  return config.routes.find((r) =>
    r.path.endsWith("*") ? path.startsWith(r.path.slice(0, -1)) : path === r.path,
  );
}
