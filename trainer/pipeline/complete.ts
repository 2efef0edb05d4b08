/**
 * Whether data.source holds a whole day before a run reads it (pipeline.json `data.complete`,
 * docs/pipeline.md step 1). A run started while the export still writes would train on part of
 * the day, and the next run over that day would be refused as partly trained on before
 * (./delivered.ts); this says "not ready" instead, before anything is locked, downloaded or
 * trained, so a scheduler can try again later.
 *
 * Two tests, either or both:
 *   marker        a file the export writes once it has finished (Spark and Hadoop write
 *                 `_SUCCESS` into the job's output folder). A marker vouches for its folder and
 *                 every folder below it, within the source: each data file needs one in its own
 *                 folder, or in a folder above it that lies inside the source (an s3:// prefix:
 *                 a folder whose key begins with the prefix; a glob: a folder below its fixed
 *                 leading folders, or that folder itself when the glob goes on with `**`; a
 *                 folder source reads one folder). So Spark's one `_SUCCESS` at the root of a
 *                 partitioned day covers its `hour=NN/` folders, while `logs/_SUCCESS` does not
 *                 vouch for the days a glob such as `logs/2026-12-0[67]/part-*.csv` picks, each of
 *                 which needs its own.
 *   quiet period  every data file was last modified at least `quietMinutes` ago (a local file's
 *                 mtime, an S3 object's LastModified from the listing), so a writer still
 *                 appending is not read.
 *
 * This module judges a listing (./data.ts lists local sources, ./s3-source.ts s3:// ones); it
 * reads nothing itself but the markers, through the caller's `hasMarker`.
 */
import { dirname, isAbsolute, normalize, sep } from "node:path";

/** The marker's name when `data.complete.marker` is `true`: what Spark and Hadoop write. */
export const DEFAULT_MARKER = "_SUCCESS";

/** `data.complete` as the config resolves it: at least one of the two. */
export interface CompleteRule {
  /** The marker's file name (no path); absent: no marker is needed. */
  marker?: string;
  /** Every data file must be at least this many minutes old; absent: no quiet period. */
  quietMinutes?: number;
}

/** One data file as a listing saw it. */
export interface ListedFile {
  /** How messages name it: its path, or an s3:// object's URL. */
  name: string;
  /** When it was last modified (ms since the epoch); undefined when the listing does not say. */
  modifiedMs: number | undefined;
  /**
   * The folders whose marker vouches for it, its own first, then each one above it while its
   * name still begins with the source (as messages name them).
   */
  folders: readonly string[];
}

/** What the check found, as the run record keeps it (`complete`). */
export interface Completeness {
  ready: boolean;
  /** One line: what was checked and found, or what is missing. */
  detail: string;
  marker?: string;
  quietMinutes?: number;
  /** Data files listed. */
  files: number;
  /** Folders holding data files that no marker vouches for (the file's own folder, and the highest one a marker may sit in). */
  lacking?: { folder: string; files: number; upTo?: string }[];
  /** Data files modified within the quiet period, newest first, with their age in seconds (negative: a time ahead of this clock). */
  recent?: { file: string; ageS: number }[];
  /** The source holds no data file (yet), or does not exist. */
  empty?: string;
}

/** A source that is not complete: the run ends "not-ready" (exit 3) without reading it. */
export class NotReadyError extends Error {
  override name = "NotReadyError";
  constructor(readonly completeness: Completeness) {
    super(completeness.detail);
  }
}

/** What judgeComplete reads. */
export interface CompleteInput {
  /** data.source as written, for messages. */
  source: string;
  rule: CompleteRule;
  /** The data files the source holds now, in the order they would be read. */
  files: readonly ListedFile[];
  /** Whether `folder` (one of a file's `folders`) holds the marker. */
  hasMarker: (folder: string) => Promise<boolean>;
  /** Now, ms since the epoch. */
  now: number;
  /**
   * With no data file: why (`does not exist`, `holds no data file`) and the folder whose marker
   * would say the day is complete and empty (a folder source, an s3:// prefix), if there is one.
   */
  empty?: { why: string; root?: string };
  /** A file's name in messages (default: as listed). */
  show?: (name: string) => string;
}

/** How many names a message lists before "and N more". */
const LISTED = 3;

/**
 * Judges a listing against the rule. Not ready when a file lacks a marker, a file is younger
 * than the quiet period, or there is no data file at all while no marker says the day is
 * complete (the export has not begun: an empty day with its marker is complete, and reads as
 * the empty day it is).
 */
export async function judgeComplete(input: CompleteInput): Promise<Completeness> {
  const { rule, files, now, source } = input;
  const show = input.show ?? ((name: string) => name);
  const markerName = rule.marker;
  const base: Pick<Completeness, "marker" | "quietMinutes" | "files"> = {
    ...(markerName !== undefined ? { marker: markerName } : {}),
    ...(rule.quietMinutes !== undefined ? { quietMinutes: rule.quietMinutes } : {}),
    files: files.length,
  };
  const notReady = (parts: string[], extra: Partial<Completeness>): Completeness => ({
    ready: false,
    detail: `data.source ${source} is not complete: ${parts.join("; ")}; no data file was read and nothing published (run again once the export has finished)`,
    ...base,
    ...extra,
  });

  if (files.length === 0) {
    const why = input.empty?.why ?? "holds no data file";
    const root = input.empty?.root;
    // A marker beside no data: the export finished and wrote nothing, which is the empty day
    // the data step names, not a day to wait for.
    if (markerName !== undefined && root !== undefined && (await input.hasMarker(root)))
      return { ready: true, detail: `${markerName} in ${root}, and no data file`, ...base, empty: why };
    const marker = markerName !== undefined && root !== undefined ? `, and no ${markerName}` : "";
    return notReady([`it ${why} yet${marker}`], { empty: why });
  }

  const parts: string[] = [];
  let lacking: NonNullable<Completeness["lacking"]> | undefined;
  if (markerName !== undefined) {
    const known = new Map<string, Promise<boolean>>();
    const marked = (folder: string) => {
      let found = known.get(folder);
      if (!found) {
        found = input.hasMarker(folder);
        known.set(folder, found);
      }
      return found;
    };
    const byFolder = new Map<string, { files: number; upTo?: string; vouched: boolean }>();
    for (const file of files) {
      const own = file.folders[0]!;
      const seen = byFolder.get(own);
      if (seen) {
        seen.files++;
        continue;
      }
      let vouched = false;
      for (const folder of file.folders)
        if (await marked(folder)) {
          vouched = true;
          break;
        }
      const top = file.folders[file.folders.length - 1]!;
      byFolder.set(own, { files: 1, vouched, ...(top !== own ? { upTo: top } : {}) });
    }
    lacking = [...byFolder]
      .filter(([, f]) => !f.vouched)
      .map(([folder, f]) => ({ folder, files: f.files, ...(f.upTo !== undefined ? { upTo: f.upTo } : {}) }));
    if (lacking.length > 0) {
      const named = lacking
        .slice(0, LISTED)
        .map(
          (l) =>
            `${l.folder} (${l.files} data file${l.files === 1 ? "" : "s"}${l.upTo !== undefined ? `, nor in a folder above it up to ${l.upTo}` : ""})`,
        );
      const more = lacking.length > LISTED ? ` and ${lacking.length - LISTED} more folders` : "";
      parts.push(`no ${markerName} in ${named.join(", ")}${more}`);
    }
  }

  let recent: NonNullable<Completeness["recent"]> | undefined;
  let newestAge: number | undefined;
  if (rule.quietMinutes !== undefined) {
    const quietMs = rule.quietMinutes * 60_000;
    const unknown = files.filter((f) => f.modifiedMs === undefined);
    if (unknown.length > 0)
      parts.push(
        `the listing gives no last-modified time for ${listed(unknown.map((f) => show(f.name)))}, so the quiet period cannot be checked`,
      );
    const aged = files
      .filter((f) => f.modifiedMs !== undefined)
      .map((f) => ({ file: f.name, ageMs: now - f.modifiedMs! }))
      .sort((a, b) => a.ageMs - b.ageMs);
    newestAge = aged[0]?.ageMs;
    const young = aged.filter((f) => f.ageMs < quietMs);
    recent = young.map((f) => ({ file: f.file, ageS: Math.round(f.ageMs / 100) / 10 }));
    if (young.length > 0) {
      const named = young.slice(0, LISTED).map((f) => `${show(f.file)} ${ageText(f.ageMs)}`);
      const more = young.length > LISTED ? ` and ${young.length - LISTED} more` : "";
      const wait = quietMs - young[0]!.ageMs;
      parts.push(
        `modified within the last ${minutesText(rule.quietMinutes)}: ${named.join(", ")}${more} (data.complete.quietMinutes ${rule.quietMinutes}: quiet in ${durationText(wait)} at the earliest)`,
      );
    }
  }

  const found = {
    ...(lacking && lacking.length > 0 ? { lacking } : {}),
    ...(recent && recent.length > 0 ? { recent } : {}),
  };
  if (parts.length > 0) return notReady(parts, found);
  const checked = [
    ...(markerName !== undefined ? [`${markerName} for every data file`] : []),
    `${files.length} data file${files.length === 1 ? "" : "s"}`,
    ...(rule.quietMinutes !== undefined && newestAge !== undefined
      ? [
          `the newest modified ${durationText(newestAge)} ago (quiet period ${minutesText(rule.quietMinutes)})`,
        ]
      : []),
  ];
  return { ready: true, detail: `${source}: ${checked.join(", ")}`, ...base };
}

/**
 * The folders whose marker vouches for a file in the local folder `dir`: `dir`, then each one
 * above it that `inside` accepts (globOwns for a glob; a folder or file source reads one folder,
 * and accepts none above it).
 */
export function localFolders(dir: string, inside: (folder: string) => boolean): string[] {
  const folders = [dir];
  for (let at = dir; ; ) {
    const up = dirname(at);
    if (up === at || !inside(up)) break;
    folders.push(up);
    at = up;
  }
  return folders;
}

/**
 * Which folders above a matched file lie inside a glob: those below its fixed leading folders
 * (`logs/` when the glob picks among day folders under it: its marker vouches for none of them),
 * and that folder itself when the glob goes on with `**` (one tree, as an s3:// prefix is).
 */
export function globOwns(pattern: string): (folder: string) => boolean {
  const parts = normalize(pattern).split(sep);
  const wild = parts.findIndex((p) => /[*?[{]/.test(p));
  const root = normalize(parts.slice(0, Math.max(wild, 0)).join(sep) || (isAbsolute(pattern) ? sep : "."));
  const below = root === "." ? "" : root.endsWith(sep) ? root : `${root}${sep}`;
  const tree = parts[wild] === "**";
  return (folder) => {
    const f = normalize(folder);
    if (f === root) return tree;
    return below === "" ? !isAbsolute(f) && f !== "." : f.startsWith(below);
  };
}

/**
 * The folders (as s3:// URLs ending in "/") whose marker vouches for the object `key` under
 * `prefix`: the key's folder, then each one above it that still begins with the prefix.
 */
export function s3Folders(bucket: string, key: string, prefix: string): string[] {
  const folders: string[] = [];
  let folder = key.slice(0, key.lastIndexOf("/") + 1);
  for (;;) {
    if (folders.length > 0 && !folder.startsWith(prefix)) break;
    folders.push(`s3://${bucket}/${folder}`);
    if (folder === "") break;
    folder = folder.slice(0, folder.lastIndexOf("/", folder.length - 2) + 1);
  }
  return folders;
}

/** An age for messages: "42 s ago", "3 min 5 s ago", or "30 s ahead of this clock". */
function ageText(ms: number): string {
  // A file written this moment can read a fraction of a second ahead (mtime and clock round apart).
  return ms <= -500 ? `${durationText(-ms)} ahead of this clock` : `${durationText(ms)} ago`;
}

/** "42 s", "3 min 5 s", "2 h 4 min". */
export function durationText(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min${s % 60 ? ` ${s % 60} s` : ""}`;
  const m = Math.round(s / 60);
  return `${Math.floor(m / 60)} h${m % 60 ? ` ${m % 60} min` : ""}`;
}

function minutesText(minutes: number): string {
  return `${minutes} min`;
}

function listed(names: readonly string[]): string {
  return names.length <= LISTED
    ? names.join(", ")
    : `${names.slice(0, LISTED).join(", ")} and ${names.length - LISTED} more`;
}
