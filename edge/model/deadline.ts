/**
 * A time limit on work the runtime cannot cancel (an R2 download, onnxruntime creating a
 * session): past `ms` the caller gets a DeadlineError and moves on. The work itself runs to its
 * end unobserved: its failure is swallowed, so nothing is left unhandled, and its late result
 * goes to `late` (which releases what it holds) or is dropped.
 */

export class DeadlineError extends Error {
  override name = "DeadlineError";
}

export function withDeadline<T>(
  work: Promise<T>,
  ms: number,
  what: string,
  late?: (result: T) => void,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let missed = false;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      missed = true;
      reject(new DeadlineError(`${what} took longer than ${ms} ms`));
    }, ms);
  });
  work.then(
    (result) => {
      if (missed) late?.(result);
    },
    () => undefined,
  );
  return Promise.race([work, expired]).finally(() => clearTimeout(timer));
}
