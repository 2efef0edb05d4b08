/**
 * Reads a body stream up to a byte limit, so nothing oversized is buffered whole before it is
 * judged. Past the limit the caller gets back a stream of everything (what was read, then the
 * rest), to cancel or to pass on unchanged. A stream that errors makes the promise reject.
 */

export type UpTo =
  | { complete: true; bytes: Uint8Array }
  | { complete: false; stream: ReadableStream<Uint8Array> };

export async function readUpTo(body: ReadableStream<Uint8Array> | null, maxBytes: number): Promise<UpTo> {
  if (!body) return { complete: true, bytes: new Uint8Array(0) };
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    size += value.byteLength;
    if (size > maxBytes) return { complete: false, stream: replay(chunks, reader) };
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.byteLength;
  }
  return { complete: true, bytes };
}

/** The chunks already read, then whatever the reader still has. */
function replay(
  chunks: Uint8Array[],
  reader: ReadableStreamDefaultReader<Uint8Array>,
): ReadableStream<Uint8Array> {
  let next = 0;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (next < chunks.length) {
        controller.enqueue(chunks[next]!);
        chunks[next++] = new Uint8Array(0);
        return;
      }
      const { done, value } = await reader.read();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
}
