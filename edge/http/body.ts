/**
 * Reads a JSON request body with a byte limit, so an oversized body is refused before parsing.
 * The content-type is not checked: a JSON body sent with another type (curl -d) is still read.
 */
import { containersAtMost, MAX_JSON_CONTAINERS, MAX_JSON_DEPTH } from "../json-containers.ts";
import type { Problem } from "./problem.ts";
import { readUpTo, type UpTo } from "./read-up-to.ts";

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

  let read: UpTo;
  try {
    read = await readUpTo(request.body, maxBytes);
  } catch (error) {
    // The client went away or sent a broken stream: its request failed, not the worker.
    return fail({
      status: 400,
      kind: "body-unreadable",
      title: "Request body unreadable",
      detail: `the request body could not be read: ${error instanceof Error ? error.message : String(error)}`,
    });
  }
  if (!read.complete) {
    await read.stream.cancel().catch(() => undefined);
    return tooLarge;
  }
  const { bytes } = read;
  received?.();

  try {
    const text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    if (!containersAtMost(text))
      return fail({
        status: 413,
        kind: "body-too-large",
        title: "Request body too large",
        detail: `the request body must hold at most ${MAX_JSON_CONTAINERS} objects and arrays, nested at most ${MAX_JSON_DEPTH} deep`,
      });
    return { ok: true, value: JSON.parse(text) };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return fail({
      status: 400,
      kind: "invalid-json",
      title: "Invalid JSON",
      detail:
        bytes.byteLength === 0
          ? "the request body is empty; expected a JSON object"
          : `the body is not JSON: ${message}`,
      errors: [{ field: "", message }],
    });
  }
}
