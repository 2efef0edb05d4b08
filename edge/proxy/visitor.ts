/** The visitor's user id in proxy mode: a request header, else a cookie. */
import type { ProxyConfig } from "./config.ts";

export function visitorId(request: Request, user: ProxyConfig["user"]): string | undefined {
  const fromHeader = request.headers.get(user.header)?.trim();
  if (fromHeader) return fromHeader;
  if (!user.cookie) return undefined;
  for (const part of (request.headers.get("cookie") ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === user.cookie) {
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

/** The request headers a per-visitor answer depends on. */
export function varyOn(user: ProxyConfig["user"]): string[] {
  return user.cookie ? [user.header, "cookie"] : [user.header];
}
