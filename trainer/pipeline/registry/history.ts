/**
 * The pipeline's run history, and garbage collection of the model directories nothing needs.
 *
 * Each run leaves one record, `runs/<ISO start time>-<run id>.json`, written with a conditional
 * put so a record is never overwritten; the keys sort by time, so the newest come last in key
 * order. What a record holds is record.ts's business: here only the model prefixes it names
 * (RecordRef) matter, because gc keeps the models the recent runs published or served.
 */
import type { Registry } from "../contracts.ts";
import { isModelPrefix, MODELS_PREFIX, normalizePrefix, POINTER_NAMES, prefixOfKey } from "./keys.ts";

/** Where run records live. */
export const RUNS_PREFIX = "runs/";

/** The record fields gc reads: the model a run published and the champion it ran against. */
export interface RecordRef {
  published?: { prefix: string };
  champion?: { prefix: string };
}

/** What putRecord needs of a record to name its key; the rest is the caller's. */
export interface RecordKey {
  /** The run's id: letters, digits, ".", "_" and "-" (it becomes part of a key). */
  runId: string;
  /** When the run started: an ISO 8601 time (written back in UTC, `toISOString()` form). */
  startedAt: string;
}

/** A record as read back. */
export interface HistoryEntry {
  /** `runs/<time>-<run id>.json`. */
  key: string;
  /** The record's JSON, parsed; record.ts knows its shape. */
  record: unknown;
}

/** A record with this key exists already: records are never overwritten. */
export class RecordExistsError extends Error {
  override name = "RecordExistsError";
}

/** A stored record could not be read as JSON. */
export class HistoryError extends Error {
  override name = "HistoryError";
}

/**
 * Writes `record` as `runs/<startedAt>-<runId>.json`, only if no record has that key (never
 * overwrites: RecordExistsError). Returns the key. Generic so a record type with more fields
 * passes as an object literal.
 */
export async function putRecord<T extends RecordKey>(registry: Registry, record: T): Promise<string> {
  const key = recordKey(record);
  const bytes = new TextEncoder().encode(`${JSON.stringify(record, null, 2)}\n`);
  if (!(await registry.put(key, bytes, { ifAbsent: true })))
    throw new RecordExistsError(`${key} exists in ${registry.describe}; run records are never overwritten`);
  return key;
}

/** The record key for a run: UTC time first, so key order is time order. */
export function recordKey(record: RecordKey): string {
  if (!/^[A-Za-z0-9._-]+$/.test(record.runId))
    throw new RangeError(`runId "${record.runId}" must be letters, digits, ".", "_" or "-"`);
  const time = Date.parse(record.startedAt);
  if (Number.isNaN(time)) throw new RangeError(`startedAt "${record.startedAt}" is not an ISO time`);
  // toISOString(): one fixed-width UTC form, so records from machines in other zones still sort.
  return `${RUNS_PREFIX}${new Date(time).toISOString()}-${record.runId}.json`;
}

export interface ListRecordsOptions {
  /** At most this many records, the newest (of those `where` keeps); default all of them. */
  limit?: number;
  /** Only the records this keeps count and are returned; default every record. */
  where?: (record: unknown) => boolean;
  /** At most this many records are read, kept or not (each one request); default all of them. */
  scan?: number;
}

/** Run records, newest first. Throws HistoryError naming a record that is not JSON. */
export async function listRecords(
  registry: Registry,
  options: ListRecordsOptions = {},
): Promise<HistoryEntry[]> {
  const limit = options.limit ?? Number.POSITIVE_INFINITY;
  if (!(limit >= 0)) throw new RangeError(`limit must be 0 or more, got ${limit}`);
  const keys = (await registry.list(RUNS_PREFIX)).filter((key) => key.endsWith(".json"));
  keys.sort((a, b) => (a < b ? 1 : a > b ? -1 : 0));
  const entries: HistoryEntry[] = [];
  for (const key of keys.slice(0, options.scan ?? keys.length)) {
    if (entries.length >= limit) break;
    const stored = await registry.get(key);
    // Listed, then gone: not something this pipeline does (records are never deleted), but a
    // hand-deleted record is no reason to fail.
    if (!stored) continue;
    let record: unknown;
    try {
      record = JSON.parse(new TextDecoder().decode(stored.bytes));
    } catch (error) {
      throw new HistoryError(`${key} in ${registry.describe} is not JSON: ${String(error)}`);
    }
    if (!options.where || options.where(record)) entries.push({ key, record });
  }
  return entries;
}

/** The model prefixes a record names (published?.prefix, champion?.prefix), with trailing slashes. */
export function recordPrefixes(record: unknown): string[] {
  if (typeof record !== "object" || record === null) return [];
  const { published, champion } = record as { published?: unknown; champion?: unknown };
  const prefixes: string[] = [];
  for (const ref of [published, champion]) {
    const prefix = typeof ref === "object" && ref !== null ? (ref as { prefix?: unknown }).prefix : undefined;
    if (typeof prefix === "string" && prefix !== "") prefixes.push(normalizePrefix(prefix));
  }
  return prefixes;
}

/** Which record set a pointer to a prefix, and what the pointer named before it. */
export interface PublishedBefore {
  /** What the pointer named before (undefined: it was the first model published to it). */
  previous?: string;
  runId: string;
  /** The record's kind ("run", "promote"). */
  kind: string;
}

/**
 * What `pipeline rollback` would point `pointer` back to from `prefix`: the `previous` of the
 * newest record in `entries` (newest first, as listRecords gives them) that set `pointer` to
 * `prefix` and was not itself rolled back. Undefined when no record did.
 */
export function publishedBefore(
  entries: readonly HistoryEntry[],
  pointer: string,
  prefix: string,
): PublishedBefore | undefined {
  const wanted = normalizePrefix(prefix);
  for (const { record } of entries) {
    if (typeof record !== "object" || record === null) continue;
    const r = record as { published?: unknown; outcome?: unknown; runId?: unknown; kind?: unknown };
    if (typeof r.published !== "object" || r.published === null || r.outcome === "rolled-back") continue;
    const p = r.published as { pointer?: unknown; prefix?: unknown; previous?: unknown };
    if (p.pointer !== pointer || typeof p.prefix !== "string" || normalizePrefix(p.prefix) !== wanted)
      continue;
    return {
      ...(typeof p.previous === "string" && p.previous !== "" ? { previous: p.previous } : {}),
      runId: typeof r.runId === "string" ? r.runId : "?",
      kind: typeof r.kind === "string" ? r.kind : "run",
    };
  }
  return undefined;
}

export interface GcOptions {
  /** How many of the newest run records protect the models they name (0: only the pointers do). */
  keep: number;
  /** More prefixes to keep, e.g. one published this run and not yet recorded. */
  protect?: string[];
  /** Report what would be deleted, delete nothing. */
  dryRun?: boolean;
}

export interface GcResult {
  /** The model prefixes deleted (or, with dryRun, that would be), in key order. */
  prefixes: string[];
  /** Every object key deleted (or that would be). */
  keys: string[];
  /** The prefixes kept because a pointer, a recent record or `protect` names them. */
  kept: string[];
}

/**
 * Deletes the model directories under models/ that neither pointer names, nor any of the
 * newest `keep` records, nor `protect`, and that no pointer would go back to on a `rollback`
 * (publishedBefore, over every record: a run of refusals longer than `keep` must not delete the
 * model an operator rolls back to). Never touches records, the lock or any key outside a
 * `models/<sha256>/` prefix. Run it under the pipeline lock, so no publish or flip is in flight.
 */
export async function gc(registry: Registry, options: GcOptions): Promise<GcResult> {
  const { keep } = options;
  if (!(Number.isInteger(keep) && keep >= 0))
    throw new RangeError(`keep must be a whole number, got ${keep}`);
  const kept = new Set<string>((options.protect ?? []).map(normalizePrefix));
  const records = await listRecords(registry);
  const addPointers = async () => {
    for (const name of POINTER_NAMES) {
      const prefix = await registry.getPointer(name);
      if (!prefix) continue;
      kept.add(normalizePrefix(prefix));
      const before = publishedBefore(records, name, prefix)?.previous;
      if (before) kept.add(normalizePrefix(before));
    }
  };
  await addPointers();
  // The newest `keep` records that name a model: a run that ended before it read the champion
  // (not-ready, a held lock) names none, and a scheduler's retries must not use up `keep`.
  for (const record of records
    .map((e) => e.record)
    .filter((r) => recordPrefixes(r).length > 0)
    .slice(0, keep))
    for (const prefix of recordPrefixes(record)) kept.add(prefix);

  const byPrefix = new Map<string, string[]>();
  for (const key of await registry.list(MODELS_PREFIX)) {
    const prefix = prefixOfKey(key);
    // Only content-addressed directories: anything else under models/ was put there by hand.
    if (!prefix || !isModelPrefix(prefix)) continue;
    const keys = byPrefix.get(prefix) ?? [];
    keys.push(key);
    byPrefix.set(prefix, keys);
  }
  // The pointers once more, read after the listing: a pointer that moved while we listed (a
  // rollback from outside the pipeline) still protects what it names now.
  await addPointers();

  const result: GcResult = { prefixes: [], keys: [], kept: [] };
  for (const [prefix, keys] of [...byPrefix].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    if (kept.has(prefix)) {
      result.kept.push(prefix);
      continue;
    }
    // manifest.json first: from the first delete on, the directory reads as incomplete (the
    // worker refuses a prefix without its manifest) rather than as a manifest missing its files.
    const ordered = [...keys].sort((a, b) => rank(a) - rank(b));
    if (!options.dryRun) for (const key of ordered) await registry.delete(key);
    result.prefixes.push(prefix);
    result.keys.push(...ordered);
  }
  return result;
}

function rank(key: string): number {
  return key.endsWith("/manifest.json") ? 0 : 1;
}
