/**
 * One graph load at a time per isolate, whichever slot (the champion, the challenger) it is for.
 *
 * Loading a graph holds its downloaded bytes in JS while onnxruntime's wasm memory, which never
 * shrinks, grows by 2.5–3.6 times the graph (docs/artifacts.md, "Graph size"):
 * MTRANK_MODEL_MAX_BYTES is sized for one swap, the sessions serving plus one graph loading. Two
 * loads at once double that and can take the isolate past its 128 MB, which ends every request
 * it holds.
 *
 * A refresh joins the queue when it starts, before it reads its pointer, with its slot's rank,
 * and asks for its turn only once it has a model to load. The turn goes to the first ticket by
 * rank, then by when it joined, once that ticket asks and no load is in flight: a challenger ready
 * to load waits while the champion reads its pointer, so in a fresh isolate the champion's model
 * loads first, but a champion never waits for a challenger that is still reading its pointer,
 * only for one loading. A ticket leaves when its refresh settles (its load done, failed or past
 * its deadline), or without loading.
 *
 * Nothing here waits on a timer. The runtime may end a request's background work before its
 * timers fire; a refresh stopped while it held the turn would then never give it back. A turn
 * held past its ticket's `holdLimitMs`, or a place ahead that has not asked for its turn that
 * long after joining, is taken to be such a one: the next ticket that joins, asks or leaves
 * passes it over.
 */

export interface LoadTicket {
  /**
   * Resolves when this ticket may load: no load in flight and no ticket ahead of it. Rejects
   * once the ticket has left the queue.
   */
  turn(): Promise<void>;
  /** Gives the turn back, or the place in the queue if it had none. Later calls do nothing. */
  leave(): void;
}

export interface LoadQueue {
  /**
   * A place in the queue: lower `rank` loads first. A turn held longer than `holdLimitMs` is
   * passed over.
   */
  join(rank: number, holdLimitMs: number): LoadTicket;
}

export interface LoadQueueOptions {
  /** Epoch milliseconds; tests pass their own clock. */
  now?: () => number;
}

interface Entry {
  rank: number;
  joinedAt: number;
  holdLimitMs: number;
  /** Set once the ticket asks for its turn. */
  asked?: { resolve: () => void; reject: (error: Error) => void; promise: Promise<void> };
  /** When it got the turn. */
  since?: number;
  left: boolean;
}

export function loadQueue(options: LoadQueueOptions = {}): LoadQueue {
  // Looked up per call rather than captured, so a test that mocks Date still drives it.
  const now = options.now ?? (() => Date.now());
  /** Tickets without the turn, by rank then by when they joined. */
  const waiting: Entry[] = [];
  let holder: Entry | undefined;

  function next(): void {
    const t = now();
    if (holder && t - holder.since! > holder.holdLimitMs) {
      // Its refresh was stopped by the runtime: a live one gives the turn back by its deadline.
      holder.left = true;
      holder = undefined;
    }
    if (holder) return;
    // The first ticket that asked, unless one ahead of it is still reading its pointer (for no
    // longer than its hold limit: past that, its refresh was stopped too).
    const at = waiting.findIndex((entry) => entry.asked || t - entry.joinedAt <= entry.holdLimitMs);
    const first = waiting[at];
    if (!first?.asked) return;
    waiting.splice(at, 1);
    first.since = t;
    holder = first;
    first.asked.resolve();
  }

  function ticket(entry: Entry): LoadTicket {
    return {
      turn() {
        if (!entry.asked) {
          let resolve: () => void = () => undefined;
          let reject: (error: Error) => void = () => undefined;
          const promise = new Promise<void>((res, rej) => {
            resolve = res;
            reject = rej;
          });
          entry.asked = { resolve, reject, promise };
          if (entry.left) reject(new Error("left the load queue"));
        }
        if (!entry.left) next();
        return entry.asked.promise;
      },
      leave() {
        if (entry.left) return;
        entry.left = true;
        if (holder === entry) holder = undefined;
        else {
          waiting.splice(waiting.indexOf(entry), 1);
          entry.asked?.reject(new Error("left the load queue"));
        }
        next();
      },
    };
  }

  return {
    join(rank, holdLimitMs) {
      const entry: Entry = { rank, joinedAt: now(), holdLimitMs, left: false };
      let at = waiting.length;
      while (at > 0 && waiting[at - 1]!.rank > rank) at--;
      waiting.splice(at, 0, entry);
      next();
      return ticket(entry);
    },
  };
}
