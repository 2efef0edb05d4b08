/**
 * A time limit on work the runtime cannot cancel (an R2 download, onnxruntime creating a
 * session): past `ms` the caller gets a DeadlineError and moves on. The work itself runs to its
 * end unobserved: its failure is swallowed, so nothing is left unhandled, and its late result
 * goes to `late` (which releases what it holds) or is dropped. Work given as a function gets a
 * signal that aborts at the deadline, to stop at its next step rather than run on: a load past
 * its deadline then reads no more bytes and creates no session beside the next load.
 */

export class DeadlineError extends Error {
  override name = "DeadlineError";
}

export function withDeadline<T>(
  work: Promise<T> | ((signal: AbortSignal) => Promise<T>),
  ms: number,
  what: string,
  late?: (result: T) => void,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let missed = false;
  const controller = new AbortController();
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      missed = true;
      const error = new DeadlineError(`${what} took longer than ${ms} ms`);
      controller.abort(error);
      reject(error);
    }, ms);
  });
  if (typeof work === "function") work = work(controller.signal);
  work.then(
    (result) => {
      if (missed) late?.(result);
    },
    () => undefined,
  );
  return Promise.race([work, expired]).finally(() => clearTimeout(timer));
}
