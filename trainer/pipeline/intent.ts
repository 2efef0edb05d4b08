/**
 * The flip intent: a note a run writes to the registry (`intents/flip`) right before it moves a
 * pointer to its candidate, and removes once the pointer is settled: the smoke test passed (or
 * none is configured), the pointer was put back, or it never moved; and the run's record is
 * stored. A run killed between the flip and that point (SIGKILL, a lost machine, a second
 * Ctrl-C) leaves the candidate serving without a passed smoke test and without a record, so
 * that `rollback` cannot tell what it replaced and the next run would judge its candidate
 * against it, warm-start from it and train its day again. The intent says all of that: which
 * run, which pointer, the candidate, what the pointer named before, and the run's record as it
 * stood before the flip (its data files, metrics and gate).
 *
 * The next run settles a leftover intent under the lock before it reads its champion
 * (settleIntent): if the pointer names the candidate, it is verified and smoke-tested as the dead
 * run would have, and put back to what it named before when either fails; the dead run's record
 * is stored (published, rolled-back, or failed when the pointer no longer names the candidate),
 * then the intent removed. `status` shows a pending intent, `rollback` goes back to its
 * `previous`, `promote` refuses while one is pending, and `gc` keeps both models it names.
 */
import type { ModelManifest } from "../../shared/manifest.ts";
import type { PointerName, PublishedModel, Registry } from "./contracts.ts";
import type { RunRecord } from "./record.ts";
import { putRecord, recordKey } from "./registry/history.ts";
import { normalizePrefix } from "./registry/keys.ts";
import { flipPointer, verifyPrefix } from "./registry/publish.ts";
import { type SmokeOptions, type SmokeResult, smokeTest } from "./smoke.ts";

/** The intent's key in the bucket: one at a time, as runs hold the lock. */
export const INTENT_KEY = "intents/flip";

export interface FlipIntent {
  format: 1;
  /** The run that flips. */
  runId: string;
  /** When it was written: right before the flip. */
  writtenAt: string;
  /** The run's process (processOwner). */
  owner: string;
  pointer: PointerName;
  /** The model the pointer is moved to. */
  candidate: { prefix: string; id: string; version: string };
  /** What the pointer named before (absent: it was unset). */
  previous?: string;
  /** The run's record as it stood right before the flip: stored by whoever settles the intent if the run did not store its own. */
  record: RunRecord;
}

/** What settling an intent did. */
export interface Settled {
  /** The run that left it. */
  runId: string;
  pointer: PointerName;
  candidate: string;
  previous?: string;
  /**
   * kept: the candidate serves on (verified, and its smoke test passed or none is configured, or
   * the run's own record says it published); rolled-back: the pointer is back at `previous`;
   * not-flipped: the pointer did not name the candidate, so nothing was undone.
   */
  action: "kept" | "rolled-back" | "not-flipped";
  /** One line: what was found and done. */
  detail: string;
  smoke?: SmokeResult;
  /** The dead run's record, when settling stored it (the run had not). */
  stored?: string;
}

/** The smoke test a settling run makes, as its own config says (SmokeOptions less the model). */
export type SettleSmoke = Omit<SmokeOptions, "expected" | "manifest" | "pointer">;

export async function writeIntent(registry: Registry, intent: FlipIntent): Promise<void> {
  await registry.put(INTENT_KEY, new TextEncoder().encode(`${JSON.stringify(intent, null, 2)}\n`));
}

/** The intent left in the registry, if any; throws naming the key when it does not read as one. */
export async function readIntent(registry: Registry): Promise<FlipIntent | undefined> {
  const stored = await registry.get(INTENT_KEY);
  if (!stored) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(stored.bytes));
  } catch {
    parsed = undefined;
  }
  const i = (parsed ?? {}) as Partial<FlipIntent>;
  if (
    typeof i.runId !== "string" ||
    (i.pointer !== "models/current" && i.pointer !== "models/challenger") ||
    typeof i.candidate?.prefix !== "string" ||
    typeof i.record !== "object" ||
    i.record === null
  )
    throw new Error(
      `${INTENT_KEY} in ${registry.describe} does not read as a flip intent; check the pointers (pipeline status) and delete it by hand`,
    );
  return i as FlipIntent;
}

/** Removes the intent if it is `runId`'s; true when it did. */
export async function clearIntent(registry: Registry, runId: string): Promise<boolean> {
  const intent = await readIntent(registry).catch(() => undefined);
  if (intent?.runId !== runId) return false;
  await registry.delete(INTENT_KEY);
  return true;
}

/** The intent in words: which run moved which pointer to what, and that it did not finish. */
export function describeIntent(intent: FlipIntent): string {
  const c = intent.candidate;
  return `run ${intent.runId} (started ${intent.record.startedAt}) set ${intent.pointer} to ${c.prefix} (${c.id} ${c.version}; it named ${intent.previous ?? "nothing"} before) at ${intent.writtenAt} and did not finish`;
}

/** What an operator can run about a pending intent. */
export function intentRemedy(intent: FlipIntent): string {
  const flag = intent.pointer === "models/challenger" ? " --pointer challenger" : "";
  return `the next \`mtrank pipeline run\` settles it (verifies and smoke-tests the model, and puts ${intent.previous ?? "nothing"} back if it fails), or \`mtrank pipeline rollback${flag}\` puts ${intent.previous ?? "the previous model"} back now`;
}

/** Whether `a` and `b` name one prefix. */
function samePrefix(a: string | undefined, b: string | undefined): boolean {
  return a !== undefined && b !== undefined && normalizePrefix(a) === normalizePrefix(b);
}

/**
 * Settles a leftover intent (see the module comment) and removes it; `by` names who settles it,
 * for the records. Throws, leaving the intent, when the pointer cannot be put back or the record
 * cannot be stored.
 */
export async function settleIntent(
  registry: Registry,
  intent: FlipIntent,
  options: { by: string; smoke?: SettleSmoke; log?: (line: string) => void },
): Promise<Settled> {
  const { pointer, candidate, previous } = intent;
  const now = await registry.getPointer(pointer);
  const key = recordKey(intent.record);
  const own = await readStoredRecord(registry, key);
  const base = {
    runId: intent.runId,
    pointer,
    candidate: candidate.prefix,
    ...(previous ? { previous } : {}),
  };
  const dead = describeIntent(intent);
  const finishedAt = new Date().toISOString();
  let settled: Settled;
  let record: RunRecord | undefined;

  if (!samePrefix(now, candidate.prefix) || samePrefix(candidate.prefix, previous)) {
    settled = {
      ...base,
      action: "not-flipped",
      detail: `${dead}; ${pointer} names ${now ?? "nothing"} now, not its candidate: nothing to undo`,
    };
    const reason = `the run ended before it finished; ${pointer} names ${now ?? "nothing"} now, not its candidate ${candidate.prefix}: nothing of it serves (record stored by ${options.by})`;
    record = { ...intent.record, finishedAt, outcome: "failed", exitCode: 1, reason, error: reason };
  } else {
    // The flip stands: the candidate serves, and nothing has shown that it serves well.
    let why: string | undefined;
    let model: PublishedModel | undefined;
    let smoke: SmokeResult | undefined;
    if (own?.outcome === "published") {
      // The run finished and stored its record; only removing the intent was cut short.
    } else if (own) {
      why = `the run's own record ends ${own.outcome}: ${own.reason}`;
    } else {
      try {
        model = await verifyPrefix(registry, candidate.prefix);
      } catch (error) {
        why = `its files do not verify: ${messageOf(error)}`;
      }
      if (!why && options.smoke) {
        const manifest = await registry.get(`${normalizePrefix(candidate.prefix)}manifest.json`);
        smoke = await smokeTest({
          ...options.smoke,
          expected: { id: candidate.id, version: candidate.version },
          manifest: JSON.parse(new TextDecoder().decode(manifest!.bytes)) as ModelManifest,
          pointer: pointer === "models/current" ? "current" : "challenger",
          ...(options.log ? { log: options.log } : {}),
        });
        if (!smoke.passed) why = `smoke test: ${smoke.detail}`;
      }
    }
    const published = model && { ...model, pointer, ...(previous ? { previous } : {}) };
    if (why) {
      if (previous) await flipPointer(registry, pointer, previous);
      else await registry.deletePointer(pointer);
      settled = {
        ...base,
        action: "rolled-back",
        detail: `${dead}; ${why}: ${pointer} put back to ${previous ?? "(unset)"}`,
        ...(smoke ? { smoke } : {}),
      };
      if (!own)
        record = {
          ...intent.record,
          finishedAt,
          outcome: "rolled-back",
          exitCode: 1,
          reason: `${why}; the run ended before it finished, and ${options.by} put ${pointer} back to ${previous ?? "(unset)"}`,
          published: published ?? { ...candidate, files: {}, pointer, ...(previous ? { previous } : {}) },
          rollback: { pointer, from: candidate.prefix, to: previous ?? "(unset)", why },
          ...(smoke ? { smoke } : {}),
        };
    } else {
      const checked = own
        ? "its record says it published"
        : smoke
          ? "its smoke test passed"
          : "no smoke test is configured";
      settled = {
        ...base,
        action: "kept",
        detail: `${dead}; ${candidate.id} ${candidate.version} serves on (${checked})`,
        ...(smoke ? { smoke } : {}),
      };
      if (!own)
        record = {
          ...intent.record,
          finishedAt,
          outcome: "published",
          exitCode: 0,
          reason: `published ${candidate.id} ${candidate.version} to ${pointer}; the run ended before storing this record, and ${options.by} found the model serving (${checked})`,
          published: published!,
          ...(smoke ? { smoke } : {}),
        };
    }
  }
  if (record && !own) {
    await putRecord(registry, record);
    settled.stored = key;
  }
  await registry.delete(INTENT_KEY);
  return settled;
}

async function readStoredRecord(registry: Registry, key: string): Promise<RunRecord | undefined> {
  const stored = await registry.get(key);
  if (!stored) return undefined;
  try {
    return JSON.parse(new TextDecoder().decode(stored.bytes)) as RunRecord;
  } catch {
    // There, though unreadable: it is not overwritten (records never are), nor taken as a publish.
    return { outcome: "failed", reason: `${key} does not read as JSON` } as RunRecord;
  }
}

function messageOf(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split("\n")[0]!;
}
