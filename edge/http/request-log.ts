/**
 * One JSON line per request on console.log (Workers Logs / `wrangler tail` index its fields):
 * when, what, the answer's status and duration, and what the route recorded in `c.var.log`
 * (candidates, the model that served, the fallback reason and its error).
 */
import type { MiddlewareHandler } from "hono";
import type { EdgeBindings } from "../env.ts";
import type { RequestLogFields } from "../log.ts";

export function requestLog(): MiddlewareHandler<EdgeBindings> {
  return async (c, next) => {
    const ts = new Date().toISOString();
    // On Cloudflare clocks advance only on I/O, so `ms` there is wall time between I/O events.
    const start = performance.now();
    const fields: RequestLogFields = {};
    c.set("log", fields);
    await next();
    const status = c.res.status;
    const level = status >= 500 || fields.fallback ? "error" : status >= 400 ? "warn" : "info";
    console.log(
      JSON.stringify({
        level,
        event: "request",
        ts,
        method: c.req.method,
        path: c.req.path,
        status,
        ms: Math.round((performance.now() - start) * 100) / 100,
        ...fields,
      }),
    );
  };
}
