/**
 * Work a request starts but does not wait for (a model download after a KV pointer changed):
 * handed to the runtime's `waitUntil` so it outlives the response. Outside a Worker request
 * (tests calling `app.fetch(request, env)` without an execution context) the promise runs on
 * its own; its rejection is the caller's to handle, so none is left unhandled here.
 */
import type { Context } from "hono";
import type { Background } from "../model/slot.ts";

export function backgroundOf(c: Context): Background {
  let ctx: { waitUntil(p: Promise<unknown>): void } | undefined;
  try {
    ctx = c.executionCtx;
  } catch {
    // Hono throws when the request came without an execution context.
  }
  return (work) => {
    const settled = work.catch(() => undefined);
    ctx?.waitUntil(settled);
  };
}
