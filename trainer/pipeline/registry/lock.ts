/**
 * The pipeline's lock: one run at a time publishes, flips pointers and collects garbage.
 *
 * The lock is the object `locks/pipeline`, created with a conditional put (ifAbsent: R2's
 * If-None-Match: * / onlyIf etagDoesNotMatch "*"), so of two runs that start together exactly one
 * creates it. It holds who took it and until when; a run that died holding it leaves it to
 * expire, and the next run past `expiresAt` breaks it (delete, then one more conditional put).
 *
 * Breaking is the one step the registry cannot make atomic (it has no delete-if-etag): two runs
 * that find the same stale lock in the same instant could both delete and one re-create it after
 * the other did. The lock is re-read right before the delete and only the object seen stale is
 * deleted, which leaves that race to a window of one round trip, after a run has crashed, between
 * two runs starting at once; pick a TTL well past the longest run so a live run is never broken.
 *
 * A long holder renews its lock (LockHandle.renew, startHeartbeat): it re-reads the lock and, if
 * it is still this holder's and not yet expired, writes it back with a later expiresAt. That
 * write is not conditional either; it can only overwrite a breaker's lock when the breaker's
 * clock already saw it expired while the holder's did not, i.e. a clock skew of most of the TTL.
 * A holder that finds its lock expired, gone or taken over does not renew: it has lost it, and
 * whatever it was about to do under the lock (flip a pointer) must not happen.
 */
import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import type { Registry, StoredObject } from "../contracts.ts";

/** The lock's key in the bucket. */
export const LOCK_KEY = "locks/pipeline";

/** Another run holds the lock; its owner and times are in the message and the fields. */
export class LockHeldError extends Error {
  override name = "LockHeldError";
  /** Who holds it, as they named themselves (their `owner`). */
  readonly owner: string;
  /** ISO time the holder took it. */
  readonly acquiredAt: string;
  /** ISO time after which it may be broken. */
  readonly expiresAt: string;

  constructor(holder: { owner: string; acquiredAt: string; expiresAt: string }, message?: string) {
    super(
      message ??
        `${LOCK_KEY} is held by "${holder.owner}" since ${holder.acquiredAt} (until ${holder.expiresAt}); if that run is dead, \`mtrank pipeline unlock\` removes it`,
    );
    this.owner = holder.owner;
    this.acquiredAt = holder.acquiredAt;
    this.expiresAt = holder.expiresAt;
  }
}

export interface LockOptions {
  /** Who takes the lock, shown to whoever finds it held: e.g. "nightly run 2026-11-24 on ci-7". */
  owner: string;
  /** How long the lock holds before another run may break it; longer than the longest run. */
  ttlMs: number;
  /** Epoch milliseconds; tests pass their own clock. Default Date.now. */
  now?: () => number;
}

/**
 * The owner this process writes into a lock: its host and pid first, which is what lets
 * `removeLock` tell a holder that died on this host (SIGKILL, an OOM kill) from a live one.
 */
export function processOwner(what: string): string {
  return `${hostname()} pid ${process.pid} ${what}`;
}

/**
 * Whether `owner` (as processOwner wrote it) names a process on this host that no longer runs.
 * False whenever it cannot tell: another host, another owner format, a pid now reused.
 */
export function ownerIsGone(owner: string, host: string = hostname()): boolean {
  const match = /^(.+?) pid (\d+)(?: |$)/.exec(owner);
  if (!match || match[1] !== host) return false;
  try {
    process.kill(Number(match[2]), 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "ESRCH";
  }
}

/** Releases the lock if this holder still has it: true when it deleted it, false when it was gone or taken over. */
export type ReleaseLock = () => Promise<boolean>;

/** A lock this process took (takeLock). */
export interface LockHandle {
  release: ReleaseLock;
  /**
   * Re-reads the lock and, while it is still this holder's and not expired, extends it by the
   * TTL from now. Undefined when renewed; otherwise why the lock is lost (gone, another's,
   * expired), in words for a record.
   */
  renew(): Promise<string | undefined>;
}

/** The lock object's JSON. */
interface LockBody {
  owner: string;
  acquiredAt: string;
  expiresAt: string;
  /** Random per acquisition: release deletes the lock only if it is still this one. */
  token: string;
}

/**
 * Takes `locks/pipeline` for `owner` for `ttlMs`, breaking an expired lock once. Returns the
 * release function; throws LockHeldError (naming the holder and since when) while another holds it.
 */
export async function acquireLock(registry: Registry, options: LockOptions): Promise<ReleaseLock> {
  return (await takeLock(registry, options)).release;
}

/** acquireLock, with the means to renew the lock and to tell whether it is still held. */
export async function takeLock(registry: Registry, options: LockOptions): Promise<LockHandle> {
  const { owner, ttlMs } = options;
  const now = options.now ?? Date.now;
  if (!(Number.isFinite(ttlMs) && ttlMs > 0))
    throw new RangeError(`ttlMs must be a positive number, got ${ttlMs}`);
  if (owner.trim() === "") throw new RangeError("owner must name the lock's holder");

  let broke = false;
  // Three tries at most: the first; one more if the lock vanished between our put and our read
  // (its holder released it); one more after breaking a stale lock.
  for (let attempt = 0; attempt < 3; attempt++) {
    const t = now();
    const body: LockBody = {
      owner,
      acquiredAt: new Date(t).toISOString(),
      expiresAt: new Date(t + ttlMs).toISOString(),
      token: randomUUID(),
    };
    const bytes = new TextEncoder().encode(`${JSON.stringify(body)}\n`);
    if (await registry.put(LOCK_KEY, bytes, { ifAbsent: true }))
      return { release: releaser(registry, body.token), renew: renewer(registry, body, ttlMs, now) };

    const existing = await registry.get(LOCK_KEY);
    if (!existing) continue;
    const holder = parseLock(existing.bytes);
    if (!holder)
      throw new LockHeldError(
        { owner: "(unreadable)", acquiredAt: "(unknown)", expiresAt: "(never)" },
        `${LOCK_KEY} in ${registry.describe} is not a lock this pipeline wrote; delete it by hand if no run holds it`,
      );
    if (Date.parse(holder.expiresAt) > now() || broke) throw new LockHeldError(holder);

    // Stale: delete it only if it is still the object found stale (see the header on the race).
    await deleteIfUnchanged(registry, existing);
    broke = true;
  }
  const holder = await registry.get(LOCK_KEY);
  const parsed = holder && parseLock(holder.bytes);
  throw new LockHeldError(parsed ?? { owner: "(unknown)", acquiredAt: "(unknown)", expiresAt: "(unknown)" });
}

/**
 * Deletes the lock if it is still the object `seen` (the same etag), re-read right before: the
 * nearest the registry comes to a delete-if-etag. Returns the lock found instead when another has
 * taken its place since.
 */
async function deleteIfUnchanged(registry: Registry, seen: StoredObject): Promise<StoredObject | undefined> {
  const again = await registry.get(LOCK_KEY);
  if (again?.etag !== seen.etag) return again;
  await registry.delete(LOCK_KEY);
  return undefined;
}

function releaser(registry: Registry, token: string): ReleaseLock {
  return async () => {
    const stored = await registry.get(LOCK_KEY);
    // Not ours any more (it expired and another run broke it): leave theirs alone.
    if (!stored || parseLock(stored.bytes)?.token !== token) return false;
    await registry.delete(LOCK_KEY);
    return true;
  };
}

function renewer(registry: Registry, taken: LockBody, ttlMs: number, now: () => number) {
  return async (): Promise<string | undefined> => {
    const stored = await registry.get(LOCK_KEY);
    if (!stored)
      return `${LOCK_KEY} is gone (removed by \`pipeline unlock\`, or broken as expired and released)`;
    const holder = parseLock(stored.bytes);
    if (holder?.token !== taken.token)
      return holder
        ? `${LOCK_KEY} is now held by "${holder.owner}" since ${holder.acquiredAt}`
        : `${LOCK_KEY} is no longer this run's (not a lock this pipeline wrote)`;
    const t = now();
    // Expired: another may be breaking it right now, and a renewal could overwrite theirs.
    if (Date.parse(holder.expiresAt) <= t) return `${LOCK_KEY} expired at ${holder.expiresAt}`;
    const body: LockBody = { ...holder, expiresAt: new Date(t + ttlMs).toISOString() };
    await registry.put(LOCK_KEY, new TextEncoder().encode(`${JSON.stringify(body)}\n`));
    return undefined;
  };
}

/** A running heartbeat (startHeartbeat). */
export interface Heartbeat {
  /** Why the lock was lost, once a beat found it so (beats stop then); undefined while held. */
  readonly lost: string | undefined;
  /** Stops beating and waits for a beat in flight, so a release after it is not overwritten. */
  stop(): Promise<void>;
}

/**
 * Renews `lock` every `intervalMs` (a quarter of the TTL keeps it fresh across three missed
 * beats). Timers run only when the event loop does: a synchronous stretch of work longer than
 * the TTL (one training fit on the CPU backend) can still outlive the lock, so a holder checks
 * `renew()` itself right before the step the lock protects. A beat that fails to reach the
 * registry is logged and retried at the next; one that finds the lock lost stops the beats.
 */
export function startHeartbeat(
  lock: LockHandle,
  intervalMs: number,
  onError: (error: unknown) => void = () => undefined,
): Heartbeat {
  let lost: string | undefined;
  let inFlight: Promise<void> | undefined;
  const timer = setInterval(() => {
    if (inFlight || lost !== undefined) return;
    inFlight = lock
      .renew()
      .then((why) => {
        if (why !== undefined) {
          lost = why;
          clearInterval(timer);
        }
      }, onError)
      .finally(() => {
        inFlight = undefined;
      });
  }, intervalMs);
  // A heartbeat never keeps the process alive by itself.
  timer.unref();
  return {
    get lost() {
      return lost;
    },
    async stop() {
      clearInterval(timer);
      await inFlight;
    },
  };
}

function parseLock(bytes: Uint8Array): LockBody | undefined {
  try {
    const parsed: unknown = JSON.parse(new TextDecoder().decode(bytes));
    if (typeof parsed !== "object" || parsed === null) return undefined;
    const { owner, acquiredAt, expiresAt, token } = parsed as Partial<Record<keyof LockBody, unknown>>;
    if (
      typeof owner !== "string" ||
      typeof acquiredAt !== "string" ||
      typeof expiresAt !== "string" ||
      typeof token !== "string" ||
      Number.isNaN(Date.parse(expiresAt))
    )
      return undefined;
    return { owner, acquiredAt, expiresAt, token };
  } catch {
    return undefined;
  }
}

/** A lock `removeLock` deleted: who held it and why it could go. */
export interface RemovedLock {
  owner: string;
  acquiredAt: string;
  expiresAt: string;
  /** "expired", "holder gone" (its process on this host no longer runs) or "forced". */
  why: "expired" | "holder gone" | "forced";
}

/**
 * Deletes `locks/pipeline` after a run that cannot release it (killed, its machine lost), instead
 * of waiting out its TTL. Without `force` only a lock that is expired or whose holder is provably
 * gone goes; a lock that may belong to a live run throws LockHeldError saying so, since deleting
 * it lets a second run publish beside the first. Undefined when no lock was held.
 */
export async function removeLock(
  registry: Registry,
  options: { force?: boolean; now?: () => number } = {},
): Promise<RemovedLock | undefined> {
  const existing = await registry.get(LOCK_KEY);
  if (!existing) return undefined;
  const holder = parseLock(existing.bytes) ?? {
    owner: "(unreadable)",
    acquiredAt: "(unknown)",
    expiresAt: "(unknown)",
  };
  const why: RemovedLock["why"] | undefined =
    Date.parse(holder.expiresAt) <= (options.now ?? Date.now)()
      ? "expired"
      : ownerIsGone(holder.owner)
        ? "holder gone"
        : options.force
          ? "forced"
          : undefined;
  if (!why)
    throw new LockHeldError(
      holder,
      `${LOCK_KEY} is held by "${holder.owner}" since ${holder.acquiredAt} (until ${holder.expiresAt}), which may be a live run; --force removes it anyway`,
    );
  // Only the object read above: a lock taken since by a new run stays.
  const taken = await deleteIfUnchanged(registry, existing);
  if (taken) throw new LockHeldError(parseLock(taken.bytes) ?? holder);
  return { owner: holder.owner, acquiredAt: holder.acquiredAt, expiresAt: holder.expiresAt, why };
}
