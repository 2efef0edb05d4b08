/** CORS for browsers calling the worker directly, limited to the MTRANK_CORS_ORIGINS allow-list. */
import type { MiddlewareHandler } from "hono";
import { cors } from "hono/cors";
import { type EdgeBindings, listSetting } from "../env.ts";

export function corsAllowList(): MiddlewareHandler<EdgeBindings> {
  return cors({
    origin: (origin, c) => {
      const allowed = listSetting((c.env as EdgeBindings["Bindings"] | undefined)?.MTRANK_CORS_ORIGINS);
      if (allowed.includes("*")) return "*";
      return allowed.includes(origin) ? origin : null;
    },
    allowMethods: ["GET", "POST", "OPTIONS"],
    allowHeaders: ["authorization", "content-type"],
    exposeHeaders: ["x-model-version", "x-mtrank-arm", "x-mtrank-fallback", "server-timing"],
    maxAge: 600,
  });
}
