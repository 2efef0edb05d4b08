/**
 * The visitor in proxy mode: its user id (the configured header, else the configured cookie,
 * optionally HMAC-signed) and its features.
 */
import { listSetting } from "../env.ts";
import { logLine } from "../log.ts";
import type { FeatureSourceConfig, ProxyConfig } from "./config.ts";

/**
 * The visitor id, or undefined. Only the sources `user` names are read: a header or cookie is
 * whatever the visitor sends, so an id read unsigned is the visitor's claim, not their identity.
 * With `user.signed` the value must be `<id>.<signature>` (base64url HMAC-SHA256 of the id under
 * one of the comma-separated MTRANK_VISITOR_KEY keys); a value that fails reads as no id.
 */
export async function visitorId(
  request: Request,
  user: ProxyConfig["user"],
  visitorKeys: string | undefined,
): Promise<string | undefined> {
  const raw = claimedId(request, user);
  const id = raw === undefined || !user.signed ? raw : await verifiedId(raw, visitorKeys);
  // Blank is no id: not an arm of its own, nor a user feature value.
  return id?.trim() ? id : undefined;
}

function claimedId(request: Request, user: ProxyConfig["user"]): string | undefined {
  const fromHeader = user.header ? request.headers.get(user.header)?.trim() : undefined;
  if (fromHeader) return fromHeader;
  return user.cookie ? cookieValue(request, user.cookie) : undefined;
}

/** A 32-byte HMAC-SHA256 in base64url: 43 characters, `=` padding optional. */
const SIGNATURE = /^[A-Za-z0-9_-]{43}=?$/;
const encoder = new TextEncoder();

async function verifiedId(value: string, secret: string | undefined): Promise<string | undefined> {
  const dot = value.lastIndexOf(".");
  const signature = value.slice(dot + 1);
  if (dot <= 0 || !SIGNATURE.test(signature)) return undefined;
  const id = value.slice(0, dot);
  const bytes = Uint8Array.from(atob(signature.slice(0, 43).replace(/-/g, "+").replace(/_/g, "/")), (ch) =>
    ch.charCodeAt(0),
  );
  // crypto.subtle.verify compares in constant time.
  for (const key of await hmacKeys(secret))
    if (await crypto.subtle.verify("HMAC", key, bytes, encoder.encode(id))) return id;
  return undefined;
}

/** No DOM lib in this project: the type crypto.subtle.importKey resolves to. */
type HmacKey = Awaited<ReturnType<typeof crypto.subtle.importKey>>;

/** Imported once per distinct MTRANK_VISITOR_KEY value, which only a deployment changes. */
const importedKeys = new Map<string, Promise<HmacKey[]>>();

function hmacKeys(secret: string | undefined): Promise<HmacKey[]> {
  const raw = secret ?? "";
  let keys = importedKeys.get(raw);
  if (!keys) {
    const listed = listSetting(raw);
    // Failing closed: without a key no id verifies, so every visitor is anonymous; said once.
    if (listed.length === 0)
      logLine("error", "config.invalid", {
        error: "MTRANK_PROXY user.signed is set but MTRANK_VISITOR_KEY is not: no visitor id can be verified",
      });
    keys = Promise.all(
      listed.map((k) =>
        crypto.subtle.importKey("raw", encoder.encode(k), { name: "HMAC", hash: "SHA-256" }, false, [
          "verify",
        ]),
      ),
    );
    importedKeys.set(raw, keys);
  }
  return keys;
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
  const names = new Set<string>();
  if (config.user.header) names.add(config.user.header.toLowerCase());
  if (config.user.cookie) names.add("cookie");
  for (const source of Object.values(config.features)) {
    if (source.from === "header") names.add(source.name.toLowerCase());
    if (source.from === "cookie") names.add("cookie");
  }
  return [...names];
}
