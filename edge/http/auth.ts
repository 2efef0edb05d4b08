/**
 * Bearer API keys from the MTRANK_API_KEYS secret (http/api-keys.ts), compared in constant time
 * by Hono's bearer-auth (it hashes both sides before comparing). No secret configured = no auth,
 * said once in the log and in /healthz. The middleware is built once per distinct secret value,
 * not per request.
 */
import type { Context, MiddlewareHandler } from "hono";
import { bearerAuth } from "hono/bearer-auth";
import type { EdgeBindings } from "../env.ts";
import { apiKeys } from "./api-keys.ts";
import { problemResponse } from "./problem.ts";

export function apiKeyAuth(): MiddlewareHandler<EdgeBindings> {
  const byConfig = new Map<string, MiddlewareHandler>();
  return async (c, next) => {
    const raw = c.env?.MTRANK_API_KEYS ?? "";
    const { mode, keys } = apiKeys(raw);
    if (mode === "open") return next();
    if (mode === "misconfigured")
      return problemResponse(
        {
          status: 503,
          kind: "auth-misconfigured",
          title: "API keys misconfigured",
          detail: "no configured API key is usable; the error was logged",
        },
        corsHeadersOf(c),
      );
    let check = byConfig.get(raw);
    if (!check) {
      const reject = (detail: string) => ({
        message: (ctx: Context) =>
          problemResponse(
            { status: 401, kind: "unauthorized", title: "Unauthorized", detail },
            { "www-authenticate": `Bearer realm="mtrank"`, ...corsHeadersOf(ctx) },
          ),
      });
      check = bearerAuth({
        token: [...keys],
        realm: "mtrank",
        noAuthenticationHeader: reject("an API key is required: Authorization: Bearer <key>"),
        invalidAuthenticationHeader: reject("the Authorization header must be: Bearer <key>"),
        invalidToken: reject("the API key is not valid"),
      });
      byConfig.set(raw, check);
    }
    return check(c, next);
  };
}

/** CORS headers already set by the cors middleware, so a 401 is readable by the browser too. */
function corsHeadersOf(c: Context): Record<string, string> {
  const origin = c.res.headers.get("access-control-allow-origin");
  return origin ? { "access-control-allow-origin": origin, vary: "Origin" } : {};
}
