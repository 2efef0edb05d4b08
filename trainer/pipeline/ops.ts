/**
 * The pipeline's other verbs, on a registry: status (what serves in current and challenger, the
 * last runs), history, rollback (a pointer back to the model it named before, from the records),
 * promote (challenger → current) and gc. Each verb that moves a pointer or deletes takes the
 * pipeline lock and leaves a run record of its kind.
 */
import type { ModelManifest } from "../../shared/manifest.ts";
import type { PointerName, Registry } from "./contracts.ts";
import {
  describeIntent,
  type FlipIntent,
  INTENT_KEY,
  intentRemedy,
  readIntent,
  settleIntent,
} from "./intent.ts";
import { newRunId, RECORD_FORMAT, type RecordKind, type RunRecord, recordLine } from "./record.ts";
import { gc, listRecords, publishedBefore, putRecord } from "./registry/history.ts";
import { normalizePrefix, POINTER_NAMES } from "./registry/keys.ts";
import { acquireLock, processOwner, removeLock } from "./registry/lock.ts";
import { flipPointer, verifyPrefix } from "./registry/publish.ts";

/** A verb that cannot do what was asked; the message says why in one line. */
export class OpsError extends Error {
  override name = "OpsError";
}

/** What a pointer names now. */
export interface PointerStatus {
  pointer: PointerName;
  prefix?: string;
  id?: string;
  version?: string;
  /** When the prefix's manifest could not be read. */
  problem?: string;
}

export interface Status {
  registry: string;
  pointers: PointerStatus[];
  /**
   * A flip a run made and did not see through (./intent.ts), with whether its pointer still names
   * the candidate (which then serves without a passed smoke test).
   */
  pendingFlip?: { intent: FlipIntent; serving: boolean };
  /** The newest records, newest first. */
  runs: RunRecord[];
}

/** The pointers and the last `limit` runs. */
export async function pipelineStatus(registry: Registry, limit = 5): Promise<Status> {
  const pointers: PointerStatus[] = [];
  for (const pointer of POINTER_NAMES) {
    const prefix = await registry.getPointer(pointer);
    if (!prefix) {
      pointers.push({ pointer });
      continue;
    }
    const manifest = await readManifest(registry, prefix);
    pointers.push(
      typeof manifest === "string"
        ? { pointer, prefix, problem: manifest }
        : { pointer, prefix, id: manifest.id, version: manifest.version },
    );
  }
  const intent = await readIntent(registry);
  const named = intent && pointers.find((p) => p.pointer === intent.pointer)?.prefix;
  return {
    registry: registry.describe,
    pointers,
    ...(intent
      ? {
          pendingFlip: {
            intent,
            serving:
              named !== undefined && normalizePrefix(named) === normalizePrefix(intent.candidate.prefix),
          },
        }
      : {}),
    runs: await runHistory(registry, limit),
  };
}

/** The newest `limit` records, newest first (all when limit is undefined). */
export async function runHistory(registry: Registry, limit?: number): Promise<RunRecord[]> {
  const entries = await listRecords(registry, limit === undefined ? {} : { limit });
  return entries.map((e) => e.record as RunRecord);
}

/** Status as text for the CLI. */
export function formatStatus(status: Status): string {
  const lines = [`registry ${status.registry}`];
  for (const p of status.pointers) {
    const what = !p.prefix
      ? "(unset)"
      : p.problem
        ? `${p.prefix} (${p.problem})`
        : `${p.id} ${p.version}  ${p.prefix}`;
    lines.push(`${p.pointer.padEnd(18)} ${what}`);
  }
  const pending = status.pendingFlip;
  if (pending)
    lines.push(
      `pending flip: ${describeIntent(pending.intent)}; ${
        pending.serving
          ? "the model serves without a passed smoke test"
          : `${pending.intent.pointer} no longer names it`
      }; ${intentRemedy(pending.intent)}`,
    );
  lines.push(status.runs.length > 0 ? "last runs:" : "no runs recorded");
  for (const r of status.runs) lines.push(`  ${recordLine(r)}`);
  return lines.join("\n");
}

export interface PointerMoveOptions {
  /** Who asks, for the lock and the record (default: this host and process). */
  owner?: string;
  /** The lock's lifetime (default 10 minutes: these verbs take seconds). */
  ttlMs?: number;
}

/**
 * Points `pointer` back at the model it named before the current one: the `previous` of the
 * newest record that published (or promoted) the current prefix to it; or at `to` when given
 * (verified whole first). Records a run of kind rollback; returns it.
 */
export async function rollback(
  registry: Registry,
  options: PointerMoveOptions & { pointer?: PointerName; to?: string } = {},
): Promise<RunRecord> {
  const pointer = options.pointer ?? "models/current";
  return underLock(registry, "rollback", options, async (record) => {
    const current = await registry.getPointer(pointer);
    // A run that moved this pointer and did not finish (./intent.ts) left no record of the flip:
    // its intent says what the pointer named before.
    const intent = await readIntent(registry);
    const pending =
      intent?.pointer === pointer &&
      current !== undefined &&
      normalizePrefix(current) === normalizePrefix(intent.candidate.prefix)
        ? intent
        : undefined;
    let to = options.to;
    let why = `--to ${options.to}`;
    if (to === undefined && pending) {
      if (!pending.previous)
        throw new OpsError(
          `${describeIntent(pending)}: ${pointer} named nothing before it; name a prefix with --to`,
        );
      to = pending.previous;
      why = `what ${pointer} named before run ${pending.runId} set it to ${current} and did not finish (${INTENT_KEY})`;
    } else if (to === undefined) {
      if (!current) throw new OpsError(`${pointer} is not set: nothing to roll back`);
      const found = await previousOf(registry, pointer, current);
      if (!found)
        throw new OpsError(
          `no record shows what ${pointer} named before ${current}; name a prefix with --to (pipeline history lists them)`,
        );
      if (!found.previous)
        throw new OpsError(
          `${current} was the first model published to ${pointer} (run ${found.runId}): nothing before it; name a prefix with --to`,
        );
      to = found.previous;
      why = `what ${pointer} named before ${found.kind} ${found.runId} ${found.kind === "promote" ? "promoted" : "published"} ${current}`;
    }
    const target = normalizePrefix(to);
    if (current && normalizePrefix(current) === target)
      throw new OpsError(`${pointer} already names ${target}`);
    const manifest = await verifyPrefix(registry, target);
    await flipPointer(registry, pointer, target);
    const from = current ? await modelRef(registry, current) : undefined;
    Object.assign(record, {
      pointer,
      ...(from ? { champion: from } : {}),
      rollback: { pointer, ...(current ? { from: current } : {}), to: target, why },
      reason: `${pointer}: ${current ?? "(unset)"} → ${target} (${manifest.id} ${manifest.version}); ${why}`,
    });
    // The pointer no longer names the dead run's candidate: its record is stored and its intent
    // removed, as the next run would.
    if (pending) record.recovered = await settleIntent(registry, pending, { by: `rollback ${record.runId}` });
  });
}

/** The `previous` prefix of the newest record that set `pointer` to `prefix`. */
async function previousOf(
  registry: Registry,
  pointer: PointerName,
  prefix: string,
): Promise<{ previous?: string; runId: string; kind: RecordKind } | undefined> {
  // The same search gc protects the answer of (history.ts publishedBefore).
  const found = publishedBefore(await listRecords(registry), pointer, prefix);
  return found && { ...found, kind: found.kind as RecordKind };
}

/**
 * models/challenger's model becomes models/current's; the challenger pointer is then cleared, as
 * both arms would otherwise serve one model. Records a run of kind promote.
 */
export async function promote(registry: Registry, options: PointerMoveOptions = {}): Promise<RunRecord> {
  return underLock(registry, "promote", options, async (record) => {
    const intent = await readIntent(registry);
    if (intent) throw new OpsError(`a flip is pending: ${describeIntent(intent)}; ${intentRemedy(intent)}`);
    const challenger = await registry.getPointer("models/challenger");
    if (!challenger) throw new OpsError("models/challenger is not set: nothing to promote");
    const model = await verifyPrefix(registry, challenger);
    let previous: string | undefined;
    try {
      previous = await flipPointer(registry, "models/current", model, {
        // Recorded right before the write: a write can land and still report an error (a
        // timeout after the store took it), and then it is undone below like a failed one.
        beforeWrite: (before) => {
          record.published = { ...model, pointer: "models/current", ...(before ? { previous: before } : {}) };
        },
      });
    } catch (error) {
      if (record.published) await putBack(registry, record, error);
      throw error;
    }
    await registry.deletePointer("models/challenger");
    const champion = previous ? await modelRef(registry, previous) : undefined;
    Object.assign(record, {
      pointer: "models/current",
      ...(champion ? { champion } : {}),
      published: { ...model, pointer: "models/current", ...(previous ? { previous } : {}) },
      reason: `models/current: ${previous ?? "(unset)"} → ${model.prefix} (${model.id} ${model.version}); models/challenger cleared`,
    });
  });
}

/**
 * After a pointer write that reported an error: points `record.published.pointer` back at what
 * it named before (or deletes it if it was unset) and records that; throws when that fails too.
 */
async function putBack(registry: Registry, record: RunRecord, error: unknown): Promise<void> {
  const { pointer, prefix, previous } = record.published!;
  const why = error instanceof Error ? error.message : String(error);
  try {
    if (previous) await flipPointer(registry, pointer, previous);
    else await registry.deletePointer(pointer);
  } catch (undoError) {
    const undo = undoError instanceof Error ? undoError.message : String(undoError);
    throw new Error(`${why}; putting ${pointer} back to ${previous ?? "(unset)"} failed too: ${undo}`);
  }
  record.rollback = { pointer, from: prefix, to: previous ?? "(unset)", why };
}

/**
 * Removes the lock a run could not release (killed, its machine lost) rather than waiting out its
 * TTL: an expired lock or one whose holder's process on this host is gone, or any with `force`.
 * A removal is recorded (kind unlock: who held it, since when, why it could go); undefined when
 * no lock was held.
 */
export async function unlock(
  registry: Registry,
  options: { force?: boolean; now?: () => number } = {},
): Promise<RunRecord | undefined> {
  const removed = await removeLock(registry, options);
  if (!removed) return undefined;
  const record = newRecord("unlock", registry);
  record.reason = `removed locks/pipeline held by "${removed.owner}" since ${removed.acquiredAt} (${removed.why})`;
  await putRecord(registry, record);
  return record;
}

/** Deletes the model directories that neither pointer nor the newest `keep` records name. */
export async function collectGarbage(
  registry: Registry,
  keep: number,
  options: PointerMoveOptions & { dryRun?: boolean } = {},
): Promise<RunRecord> {
  return underLock(registry, "gc", options, async (record) => {
    // A pending flip's candidate and what it replaced: the next run or a rollback points at one.
    const intent = await readIntent(registry);
    const protect = intent ? [intent.candidate.prefix, ...(intent.previous ? [intent.previous] : [])] : [];
    const result = await gc(registry, { keep, protect, ...(options.dryRun ? { dryRun: true } : {}) });
    Object.assign(record, {
      dryRun: options.dryRun ?? false,
      gc: { keep, deleted: result.prefixes, kept: result.kept },
      reason: `${options.dryRun ? "would delete" : "deleted"} ${result.prefixes.length} model(s) (${result.keys.length} objects); kept ${result.kept.length}`,
    });
  });
}

/** A record of `kind` that starts now, done until its verb says otherwise. */
function newRecord(kind: RecordKind, registry: Registry): RunRecord {
  const startedAt = new Date().toISOString();
  return {
    format: RECORD_FORMAT,
    kind,
    runId: newRunId(),
    startedAt,
    finishedAt: startedAt,
    outcome: "done",
    exitCode: 0,
    reason: "",
    registry: registry.describe,
    pointer: "models/current",
    dryRun: false,
    steps: [],
  };
}

/**
 * Takes the lock, runs `body` on a fresh record of `kind`, stores the record (also when body
 * failed: then with outcome failed and rethrows), releases the lock.
 */
async function underLock(
  registry: Registry,
  kind: RecordKind,
  options: PointerMoveOptions,
  body: (record: RunRecord) => Promise<void>,
): Promise<RunRecord> {
  const record = newRecord(kind, registry);
  const owner = options.owner ?? processOwner(kind);
  const release = await acquireLock(registry, { owner, ttlMs: options.ttlMs ?? 10 * 60_000 });
  let failure: unknown;
  try {
    await body(record);
  } catch (error) {
    failure = error;
    // A pointer write put back (putBack) ends as a run's undone flip does.
    record.outcome = record.rollback ? "rolled-back" : "failed";
    record.exitCode = 1;
    record.reason = error instanceof Error ? error.message : String(error);
    record.error = record.reason;
  } finally {
    record.finishedAt = new Date().toISOString();
    // A verb refused before it touched anything (nothing to roll back) leaves no record.
    if (!(failure instanceof OpsError)) await putRecord(registry, record).finally(release);
    else await release();
  }
  if (failure) throw failure;
  return record;
}

async function readManifest(registry: Registry, prefix: string): Promise<ModelManifest | string> {
  const object = await registry.get(`${normalizePrefix(prefix)}manifest.json`);
  if (!object) return "no manifest.json under it";
  try {
    return JSON.parse(new TextDecoder().decode(object.bytes)) as ModelManifest;
  } catch {
    return "manifest.json is not JSON";
  }
}

async function modelRef(
  registry: Registry,
  prefix: string,
): Promise<{ id: string; version: string; prefix: string } | undefined> {
  const manifest = await readManifest(registry, prefix);
  return typeof manifest === "string"
    ? undefined
    : { id: manifest.id, version: manifest.version, prefix: normalizePrefix(prefix) };
}
