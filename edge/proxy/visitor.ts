/** The visitor in proxy mode: its user id (a request header, else a cookie) and its features. */
import type { FeatureSourceConfig, ProxyConfig } from "./config.ts";

export function visitorId(request: Request, user: ProxyConfig["user"]): string | undefined {
  const fromHeader = request.headers.get(user.header)?.trim();
  if (fromHeader) return fromHeader;
  return user.cookie ? cookieValue(request, user.cookie) : undefined;
}

function cookieValue(request: Request, name: string): string | undefined {
  for (const part of (request.headers.get("cookie") ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) {
      const value = part.slice(eq + 1).trim();
      try {
        return decodeURIComponent(value) || undefined;
      } catch {
        return value || undefined;
      }
    }
  }
  return undefined;
}

export interface VisitorFeatures {
  user: Record<string, string | number>;
  context: Record<string, string | number>;
}

/** The user and context feature values `features` names, read from the visitor's request. */
export function visitorFeatures(
  request: Request,
  features: ProxyConfig["features"],
  id: string | undefined,
): VisitorFeatures {
  const out: VisitorFeatures = { user: {}, context: {} };
  const url = new URL(request.url);
  for (const [name, source] of Object.entries(features)) {
    const value = sourceValue(request, url, source, id);
    if (value !== undefined && value !== "") out[source.side][name] = value;
  }
  return out;
}

function sourceValue(
  request: Request,
  url: URL,
  source: FeatureSourceConfig,
  id: string | undefined,
): string | number | undefined {
  switch (source.from) {
    case "visitor":
      return id;
    case "header":
      return request.headers.get(source.name)?.trim();
    case "cookie":
      return cookieValue(request, source.name);
    case "query":
      return url.searchParams.get(source.name) ?? undefined;
    case "cf": {
      // Cloudflare's geolocation and client fields; absent outside Cloudflare (and in tests).
      const value = (request as { cf?: Record<string, unknown> }).cf?.[source.name];
      return typeof value === "string" || typeof value === "number" ? value : undefined;
    }
  }
}

/** The request headers a per-visitor answer depends on: the id's, and those features read. */
export function varyOn(config: Pick<ProxyConfig, "user" | "features">): string[] {
  const names = new Set([config.user.header]);
  if (config.user.cookie) names.add("cookie");
  for (const source of Object.values(config.features)) {
    if (source.from === "header") names.add(source.name.toLowerCase());
    if (source.from === "cookie") names.add("cookie");
  }
  return [...names];
}
