/**
 * A time limit on work the runtime cannot cancel (an R2 download, onnxruntime creating a
 * session): past `ms` the caller gets a DeadlineError and moves on. The work itself runs to its
 * end unobserved; its result is dropped and its failure swallowed, so nothing is left unhandled.
 */

export class DeadlineError extends Error {
  override name = "DeadlineError";
}

export function withDeadline<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineError(`${what} took longer than ${ms} ms`)), ms);
  });
  work.catch(() => undefined);
  return Promise.race([work, expired]).finally(() => clearTimeout(timer));
}
