/**
 * Whether the day's data, or part of it, was trained on before by a run that published. A
 * published model carries what it learnt into every later one (warm start), so rows trained on
 * again weigh twice: a day delivered again (a retried export, a backfill) is refused, and so is a
 * day of which an earlier run saw a part, as when the nightly run started while the export was
 * still writing (3 of 4 hourly files, a file that has grown since) and the rest arrived later.
 *
 * A file is one an earlier published run trained on when it has the sha256 of one of that run's
 * data files (whatever its name), or when it has the name of one of them (its path, or its
 * s3:// URL) and that file's bytes are its first bytes: the file grew, by rows appended (or by
 * gzip members added), since the run read it. A file rewritten otherwise under the same name
 * (yesterday's part-0.csv replaced by today's) is new data. Only the registry's newest
 * REPEAT_RECORDS records are read: a night each, about three months.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { isAbsolute, relative, sep } from "node:path";
import type { Registry } from "./contracts.ts";
import type { DataFileRecord, RunRecord } from "./record.ts";
import { listRecords } from "./registry/history.ts";

/** The published runs' records read to find data trained on before (one request each). */
export const REPEAT_RECORDS = 100;
/**
 * The most records read to find them: records of runs that did not publish (a scheduler's
 * not-ready retries, refusals) are read and passed over, up to this many in all.
 */
export const REPEAT_SCAN = 1_000;

/** A run that published, as the messages and the record name it. */
export interface EarlierRun {
  runId: string;
  startedAt: string;
  /** The model it published. */
  prefix: string;
}

/** One of the day's files an earlier published run trained on, whole or in part. */
export interface SeenFile {
  file: DataFileRecord;
  run: EarlierRun;
  /**
   * Set when the file grew since: the bytes the run trained on, which are this file's first
   * bytes. Absent: the run had a file with this one's sha256.
   */
  bytesBefore?: number;
}

export interface DataBefore {
  /** The newest published run whose data files had every one of the day's sha256s. */
  whole?: EarlierRun;
  /** Every one of the day's files an earlier published run trained on (the newest such run). */
  seen: SeenFile[];
}

/** A data file's name across runs: its s3:// URL for a downloaded object, else its path. */
export function fileName(file: Pick<DataFileRecord, "path" | "source">): string {
  return file.source ?? file.path;
}

/**
 * The s3:// URL of a file an s3:// source downloaded under `s3Root` (`<run folder>/data/s3`, as
 * `<bucket>/<key>`: ./s3-source.ts), or undefined for a file outside it.
 */
export function downloadedFrom(path: string, s3Root: string): string | undefined {
  const below = relative(s3Root, path);
  if (below === "" || below.startsWith("..") || isAbsolute(below)) return undefined;
  return `s3://${below.split(sep).join("/")}`;
}

/**
 * What the records of the newest REPEAT_RECORDS published runs of `registry` say of `files` (the
 * day's, with bytes and sha256 as the record keeps them).
 */
export async function dataBefore(registry: Registry, files: readonly DataFileRecord[]): Promise<DataBefore> {
  const runs: { run: EarlierRun; files: DataFileRecord[]; hashes: Set<string> }[] = [];
  const published = (record: unknown): boolean => {
    const r = record as Partial<RunRecord>;
    return r.kind === "run" && r.outcome === "published" && !!r.published && Array.isArray(r.data?.files);
  };
  for (const { record } of await listRecords(registry, {
    limit: REPEAT_RECORDS,
    where: published,
    scan: REPEAT_SCAN,
  })) {
    const r = record as RunRecord & {
      published: NonNullable<RunRecord["published"]>;
      data: NonNullable<RunRecord["data"]>;
    };
    runs.push({
      run: { runId: String(r.runId), startedAt: String(r.startedAt), prefix: r.published.prefix },
      files: r.data.files,
      hashes: new Set(r.data.files.map((f) => f.sha256)),
    });
  }
  const whole =
    files.length > 0 ? runs.find(({ hashes }) => files.every((f) => hashes.has(f.sha256)))?.run : undefined;
  const seen: SeenFile[] = [];
  for (const file of files) {
    const same = runs.find(({ hashes }) => hashes.has(file.sha256));
    if (same) {
      seen.push({ file, run: same.run });
      continue;
    }
    const grown = await grownFrom(file, runs);
    if (grown) seen.push(grown);
  }
  return { ...(whole ? { whole } : {}), seen };
}

/**
 * The bytes a file's `head` digest covers: comparing heads first, a night's file under
 * yesterday's name costs no read of its first bytes when they differ within these.
 */
export const HEAD_BYTES = 64 * 1024;

/** A file's record entry: its bytes, sha256, and for a file over HEAD_BYTES, the sha256 of those first bytes. */
export async function fileRecord(path: string): Promise<DataFileRecord> {
  const { bytes, sha256, at } = await digests(path, [HEAD_BYTES]);
  const head = at.get(HEAD_BYTES);
  return { path, bytes, sha256, ...(head !== undefined && bytes > HEAD_BYTES ? { head } : {}) };
}

/** The newest run that trained on an earlier, shorter state of `file` (same name, its first bytes). */
async function grownFrom(
  file: DataFileRecord,
  runs: readonly { run: EarlierRun; files: readonly DataFileRecord[] }[],
): Promise<SeenFile | undefined> {
  const name = fileName(file);
  const candidates: { run: EarlierRun; before: DataFileRecord }[] = [];
  for (const { run, files } of runs)
    for (const before of files) {
      // A file that held no row (a CSV header alone) is the first bytes of any file it names.
      if (fileName(before) !== name || before.rows === 0) continue;
      if (!(before.bytes > 0 && before.bytes < file.bytes)) continue;
      // Different first bytes: not this file's beginning, and nothing more to read.
      if (before.head !== undefined && file.head !== undefined && before.head !== file.head) continue;
      candidates.push({ run, before });
    }
  if (candidates.length === 0) return undefined;
  // One pass over the file for every length a candidate needs.
  const { at } = await digests(file.path, [...new Set(candidates.map((c) => c.before.bytes))]);
  const found = candidates.find(({ before }) => at.get(before.bytes) === before.sha256);
  return found && { file, run: found.run, bytesBefore: found.before.bytes };
}

/** A file's byte count and sha256, and the sha256 of its first `lengths` bytes (those it has), in one pass. */
async function digests(
  path: string,
  lengths: readonly number[],
): Promise<{ bytes: number; sha256: string; at: Map<number, string> }> {
  const marks = [...lengths].filter((n) => n > 0).sort((a, b) => a - b);
  const hash = createHash("sha256");
  const at = new Map<number, string>();
  let bytes = 0;
  let next = 0;
  for await (const data of createReadStream(path)) {
    let chunk = data as Buffer;
    while (next < marks.length && bytes + chunk.length >= marks[next]!) {
      const take = marks[next]! - bytes;
      hash.update(chunk.subarray(0, take));
      bytes += take;
      chunk = chunk.subarray(take);
      at.set(marks[next]!, hash.copy().digest("hex"));
      next++;
    }
    hash.update(chunk);
    bytes += chunk.length;
  }
  return { bytes, sha256: hash.digest("hex"), at };
}

/** How a file is named in a message: below `source` when it lies there, else whole. */
function shown(file: DataFileRecord, source: string): string {
  const name = fileName(file);
  const folder = source.endsWith("/") ? source : `${source}/`;
  return name.startsWith(folder) ? name.slice(folder.length) : name;
}

/** At most `n` names, then how many more. */
function listed(names: readonly string[], n = 5): string {
  return names.length <= n
    ? names.join(", ")
    : `${names.slice(0, n).join(", ")} and ${names.length - n} more`;
}

/**
 * Why a day is partly trained on before (seen non-empty, `whole` undefined): which files which
 * run had, which grew, and which are new.
 */
export function partlySeenMessage(
  source: string,
  files: readonly DataFileRecord[],
  seen: readonly SeenFile[],
): string {
  const byRun = new Map<string, SeenFile[]>();
  for (const s of seen) byRun.set(s.run.runId, [...(byRun.get(s.run.runId) ?? []), s]);
  const parts = [...byRun.values()].map((group) => {
    const { run } = group[0]!;
    const names = group.map((s) =>
      s.bytesBefore === undefined
        ? shown(s.file, source)
        : `${shown(s.file, source)} (its first ${s.bytesBefore} of ${s.file.bytes} bytes)`,
    );
    return `run ${run.runId} (${run.startedAt}), which published ${run.prefix}, trained on ${listed(names)}`;
  });
  const seenPaths = new Set(seen.map((s) => s.file.path));
  const fresh = files.filter((f) => !seenPaths.has(f.path)).map((f) => shown(f, source));
  const grown = seen.filter((s) => s.bytesBefore !== undefined).map((s) => shown(s.file, source));
  const news = [
    ...(grown.length > 0 ? [`the rest of ${listed(grown)}`] : []),
    ...(fresh.length > 0 ? [listed(fresh)] : []),
  ];
  return `the day's data (${source}) was partly trained on before: ${parts.join("; ")}; new since: ${news.length > 0 ? news.join(" and ") : "nothing"}`;
}
