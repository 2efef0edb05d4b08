/** Problem responses for what no route answers: unknown paths, wrong methods, bugs. */
import type { ErrorHandler, Handler, NotFoundHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import { problemResponse } from "../http/problem.ts";

export const notFound: NotFoundHandler = (c) =>
  problemResponse({
    status: 404,
    kind: "not-found",
    title: "Not found",
    detail: `no route for ${c.req.method} ${c.req.path}`,
  });

export function methodNotAllowed(allow: string): Handler {
  return (c) =>
    problemResponse(
      {
        status: 405,
        kind: "method-not-allowed",
        title: "Method not allowed",
        detail: `${c.req.path} accepts ${allow}`,
      },
      { allow },
    );
}

/**
 * Hono's own client errors keep their status (and the response a middleware prepared, such as
 * bearer-auth's 401 with its WWW-Authenticate header); anything else is a bug: logged, 500.
 */
export const internalError: ErrorHandler = (error, c) => {
  if (error instanceof HTTPException && error.res) return error.getResponse();
  if (error instanceof HTTPException && error.status < 500)
    return problemResponse({
      status: error.status,
      kind: "bad-request",
      title: "Bad request",
      detail: error.message,
    });
  console.error(
    JSON.stringify({
      level: "error",
      event: "unhandled",
      path: c.req.path,
      error: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
    }),
  );
  return problemResponse({
    status: 500,
    kind: "internal",
    title: "Internal error",
    detail: "the worker failed unexpectedly; the error was logged",
  });
};
