/**
 * The request proxy mode sends to the origin. The visitor's path and query are appended to the
 * configured origin as text, never resolved against it: `new URL("//evil.test/x", origin)` reads
 * the path as a protocol-relative URL and leaves the origin's host, and a URL parser treats `\`
 * like `/` in http(s) URLs. Appending after the origin's authority, which a path starting with
 * "/" cannot extend, keeps every request on the configured origin; the origin is compared once
 * more before anything is sent.
 */

/**
 * Request headers the origin never sees: hop-by-hop ones, which describe this connection only
 * (and so does every header the visitor's Connection header names, RFC 9110 §7.6.1).
 */
const HOP_BY_HOP = [
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
];

/**
 * Headers a proxy writes to tell the origin what the visitor asked for: its host, scheme, port,
 * path, method and address, in the spellings frameworks and proxies read (Rails reads
 * X-Forwarded-Scheme and -Ssl, IIS and Zend X-Original-URL, many apps X-HTTP-Method-Override and
 * X-Real-IP). Nothing sits in front of the worker that could have written them, so a visitor's
 * are forged: an origin trusting its proxy would build links, redirects and cached pages for
 * another host or scheme, serve another path than the one routed, or take the visitor for another
 * address (allow-lists, rate limits). X-Forwarded-For is left to Cloudflare, which appends the
 * client's address.
 */
const FORWARDING = [
  "forwarded",
  // host
  "x-forwarded-host",
  "x-forwarded-server",
  "x-host",
  "x-original-host",
  // scheme and port
  "x-forwarded-proto",
  "x-forwarded-scheme",
  "x-forwarded-ssl",
  "x-forwarded-port",
  "x-url-scheme",
  "front-end-https",
  // path
  "x-forwarded-prefix",
  "x-forwarded-uri",
  "x-forwarded-path",
  "x-original-url",
  "x-original-uri",
  "x-rewrite-url",
  "x-envoy-original-path",
  // method
  "x-http-method-override",
  "x-http-method",
  "x-method-override",
  // the client's address
  "x-real-ip",
  "true-client-ip",
  "x-client-ip",
  "x-cluster-client-ip",
  "x-originating-ip",
];

export class UpstreamError extends Error {
  override name = "UpstreamError";
}

/** `origin`: the configured origin; `path` and `search`: the visitor's, as its request URL spells them. */
export function upstreamUrl(origin: URL, path: string, search: string): URL {
  const rest = path.startsWith("/") ? path : `/${path}`;
  const query = search === "" || search.startsWith("?") ? search : `?${search}`;
  const url = new URL(`${origin.origin}${rest}${query}`);
  if (url.origin !== origin.origin)
    throw new UpstreamError(`the upstream URL left the configured origin ${origin.origin}`);
  return url;
}

/**
 * The visitor's request, addressed to `url`: same method, headers and body, minus hop-by-hop and
 * forwarding headers and any header carrying one of the worker's own API keys (`secrets`), which
 * belong to the worker and must never reach a third party. Redirects come back to the visitor instead of
 * being followed, so a redirect cannot carry the visitor's cookies to another host.
 */
export function upstreamRequest(request: Request, url: URL, secrets: readonly string[]): Request {
  const headers = new Headers(request.headers);
  for (const name of (headers.get("connection") ?? "").split(",")) {
    const token = name.trim();
    // A token that is no header name (a visitor's typo) would make delete() throw.
    if (/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(token)) headers.delete(token);
  }
  for (const name of [...HOP_BY_HOP, ...FORWARDING]) headers.delete(name);
  const leaking: string[] = [];
  headers.forEach((value, name) => {
    if (secrets.some((secret) => value.includes(secret))) leaking.push(name);
  });
  for (const name of leaking) headers.delete(name);
  const hasBody = request.method !== "GET" && request.method !== "HEAD";
  return new Request(url, {
    method: request.method,
    headers,
    body: hasBody ? request.body : null,
    redirect: "manual",
  });
}

/**
 * A redirect to the origin's own host is rewritten to the host the visitor asked, so the visitor
 * stays behind the worker; a redirect anywhere else passes as the origin sent it.
 */
export function visitorLocation(location: string, origin: URL, upstream: URL, visitor: URL): string {
  let target: URL;
  try {
    target = new URL(location, upstream);
  } catch {
    return location;
  }
  if (target.origin !== origin.origin) return location;
  return `${visitor.origin}${target.pathname}${target.search}${target.hash}`;
}
