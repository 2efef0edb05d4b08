/**
 * Reads a JSON request body with a byte limit, so an oversized body is refused before parsing.
 * The content-type is not checked: a JSON body sent with another type (curl -d) is still read.
 */
import type { Problem } from "./problem.ts";

export type BodyResult = { ok: true; value: unknown } | { ok: false; problem: Problem };

const fail = (problem: Problem): BodyResult => ({ ok: false, problem });

/** `received` is called once the body's bytes are all in, before decoding and parsing. */
export async function readJsonBody(
  request: Request,
  maxBytes: number,
  received?: () => void,
): Promise<BodyResult> {
  const tooLarge = fail({
    status: 413,
    kind: "body-too-large",
    title: "Request body too large",
    detail: `the request body must be at most ${maxBytes} bytes`,
  });
  const declared = Number(request.headers.get("content-length") ?? 0);
  if (declared > maxBytes) return tooLarge;

  const chunks: Uint8Array[] = [];
  let size = 0;
  if (request.body) {
    const reader = request.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > maxBytes) {
        await reader.cancel();
        return tooLarge;
      }
      chunks.push(value);
    }
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.byteLength;
  }
  received?.();

  try {
    return { ok: true, value: JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes)) };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return fail({
      status: 400,
      kind: "invalid-json",
      title: "Invalid JSON",
      detail:
        size === 0 ? "the request body is empty; expected a JSON object" : `the body is not JSON: ${message}`,
      errors: [{ field: "", message }],
    });
  }
}
