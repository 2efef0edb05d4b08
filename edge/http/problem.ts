/** RFC 9457 problem details: every error the worker returns is application/problem+json. */
import type { FieldIssue } from "../../shared/validation.ts";

export interface Problem {
  status: number;
  /** Short slug naming the kind of problem; becomes the `type` URI. */
  kind: string;
  title: string;
  detail: string;
  errors?: FieldIssue[];
}

export function problemResponse(problem: Problem, headers: Record<string, string> = {}): Response {
  const { kind, errors, ...rest } = problem;
  const body = { type: `urn:mtrank:problem:${kind}`, ...rest, ...(errors ? { errors } : {}) };
  return new Response(JSON.stringify(body), {
    status: problem.status,
    headers: { ...headers, "content-type": "application/problem+json" },
  });
}
