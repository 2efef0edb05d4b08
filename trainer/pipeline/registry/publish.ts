/**
 * Publishing a model directory to the registry, and pointing the worker at it.
 *
 * A model directory goes under `models/<sha256 of its manifest.json bytes>/` (content-addressed:
 * the same directory always lands at the same prefix, so publishing again is harmless and a
 * prefix never holds two different models). Every file the manifest lists goes first and
 * manifest.json last, so a prefix whose manifest is readable has had all its files written; then
 * every object is read back and checked against the manifest (byte count and sha256, the checks
 * the worker makes in edge/model/remote.ts), and manifest.json against the prefix's own hash.
 *
 * Only then may a pointer name the prefix: flipPointer takes the PublishedModel publishModel
 * returns, or verifies a bare prefix (a rollback to a recorded one) in full before it flips.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { PointerName, PublishedModel, Registry } from "../contracts.ts";
import { isModelPrefix, modelPrefix, normalizePrefix, sha256Hex } from "./keys.ts";

const MANIFEST = "manifest.json";

/** A model directory could not be published or verified; `file` names the file at fault, when one is. */
export class PublishError extends Error {
  override name = "PublishError";
  /** The file (as the manifest names it) that was missing, unreadable or did not match. */
  readonly file: string | undefined;

  constructor(message: string, file?: string, options?: { cause?: unknown }) {
    super(message, options);
    this.file = file;
  }
}

export interface PublishOptions {
  /**
   * Files in the model directory the manifest does not list, to publish beside it (e.g. the
   * pipeline's data-stats.json). Each is checked after upload against the sha256 of the local
   * file. The prefix is the manifest's hash alone, so these must be fixed for a given manifest.
   */
  extraFiles?: string[];
  /** Called with one line per step, for the run's log. */
  log?: (line: string) => void;
}

type FileInfo = { bytes: number; sha256: string };

/**
 * Uploads `modelDir` (manifest.json and every file its `files` lists) under
 * `models/<sha256 of manifest.json>/`, manifest.json last, then reads every object back and
 * verifies it. Throws PublishError naming the file on any mismatch; touches no pointer.
 */
export async function publishModel(
  registry: Registry,
  modelDir: string,
  options: PublishOptions = {},
): Promise<PublishedModel> {
  const log = options.log ?? (() => {});
  const manifestBytes = await readLocal(modelDir, MANIFEST);
  const manifest = parseManifest(manifestBytes, `${join(modelDir, MANIFEST)}`);
  const prefix = modelPrefix(sha256Hex(manifestBytes));

  // The local files are checked before anything is uploaded: a directory that does not match
  // its own manifest fails here, naming the file, rather than after a partial upload.
  const uploads: { name: string; bytes: Uint8Array; expected: FileInfo }[] = [];
  for (const [name, expected] of Object.entries(manifest.files).sort(byName)) {
    const bytes = await readLocal(modelDir, name);
    const mismatch = compare(bytes, expected);
    if (mismatch)
      throw new PublishError(`${join(modelDir, name)}: ${mismatch} (manifest.json files["${name}"])`, name);
    uploads.push({ name, bytes, expected });
  }
  for (const name of options.extraFiles ?? []) {
    checkFileName(name, `extra file "${name}"`);
    if (name === MANIFEST || name in manifest.files)
      throw new PublishError(`extra file "${name}" is the manifest or listed in it already`, name);
    const bytes = await readLocal(modelDir, name);
    uploads.push({ name, bytes, expected: { bytes: bytes.byteLength, sha256: sha256Hex(bytes) } });
  }

  log(`publishing ${manifest.id} ${manifest.version} to ${registry.describe} ${prefix}`);
  for (const { name, bytes } of uploads) await upload(registry, prefix, name, bytes);
  // Last: a readable manifest.json means every file before it was written.
  await upload(registry, prefix, MANIFEST, manifestBytes);

  const expected = Object.fromEntries(uploads.map(({ name, expected }) => [name, expected]));
  await verifyObjects(registry, prefix, {
    ...expected,
    [MANIFEST]: { bytes: manifestBytes.byteLength, sha256: sha256Hex(manifestBytes) },
  });
  log(`verified ${uploads.length + 1} objects under ${prefix}`);
  return { prefix, id: manifest.id, version: manifest.version, files: expected };
}

/**
 * Reads the model directory at `prefix` back from the registry and verifies it whole:
 * manifest.json hashes to the prefix, and every file it lists is there with its byte count and
 * sha256. Throws PublishError naming the first file at fault.
 */
export async function verifyPrefix(registry: Registry, prefix: string): Promise<PublishedModel> {
  const dir = normalizePrefix(prefix);
  if (!isModelPrefix(dir)) throw new PublishError(`"${prefix}" is not a models/<sha256>/ prefix`);
  const stored = await registry.get(`${dir}${MANIFEST}`);
  if (!stored) throw new PublishError(`${dir}${MANIFEST} is not in ${registry.describe}`, MANIFEST);
  const hash = sha256Hex(stored.bytes);
  if (modelPrefix(hash) !== dir)
    throw new PublishError(`${dir}${MANIFEST}: sha256 ${hash} does not match its prefix`, MANIFEST);
  const manifest = parseManifest(stored.bytes, `${dir}${MANIFEST}`);
  await verifyObjects(registry, dir, manifest.files);
  return { prefix: dir, id: manifest.id, version: manifest.version, files: manifest.files };
}

/**
 * Points KV `name` at a published model and returns the prefix it named before (undefined if
 * none), for the record and for a rollback. `target` is the PublishedModel publishModel returned
 * (its manifest.json is checked to be still there), or a bare prefix, which is verified in full
 * first (verifyPrefix): a pointer never names a directory that is not whole.
 *
 * `beforeWrite` is called with that previous prefix right before the write: a write can land
 * and still report a failure (a timeout after the store took it), so a caller that must undo
 * the flip on failure has to know what to restore before it knows whether the write succeeded.
 */
export async function flipPointer(
  registry: Registry,
  name: PointerName,
  target: PublishedModel | string,
  options: { beforeWrite?: (previous: string | undefined) => void } = {},
): Promise<string | undefined> {
  let prefix: string;
  if (typeof target === "string") {
    prefix = (await verifyPrefix(registry, target)).prefix;
  } else {
    prefix = normalizePrefix(target.prefix);
    if (!isModelPrefix(prefix))
      throw new PublishError(`"${target.prefix}" is not a models/<sha256>/ prefix`, MANIFEST);
    // Cheap guard against a gc or a hand edit between publish and flip: one small read.
    const stored = await registry.get(`${prefix}${MANIFEST}`);
    if (!stored || modelPrefix(sha256Hex(stored.bytes)) !== prefix)
      throw new PublishError(`${prefix}${MANIFEST} is missing or changed since it was published`, MANIFEST);
  }
  const previous = await registry.getPointer(name);
  options.beforeWrite?.(previous);
  await registry.setPointer(name, prefix);
  return previous;
}

/** Reads every `files` entry back under `prefix` and compares it; throws PublishError naming the file. */
async function verifyObjects(registry: Registry, prefix: string, files: Record<string, FileInfo>) {
  for (const [name, expected] of Object.entries(files).sort(byName)) {
    const stored = await registry.get(`${prefix}${name}`);
    if (!stored) throw new PublishError(`${prefix}${name} is not in ${registry.describe}`, name);
    const mismatch = compare(stored.bytes, expected);
    if (mismatch) throw new PublishError(`${prefix}${name}: ${mismatch}`, name);
  }
}

/** Why `bytes` do not match `expected`, or undefined when they do. */
function compare(bytes: Uint8Array, expected: FileInfo): string | undefined {
  if (bytes.byteLength !== expected.bytes) return `${bytes.byteLength} bytes, expected ${expected.bytes}`;
  const actual = sha256Hex(bytes);
  if (actual !== expected.sha256) return `sha256 ${actual}, expected ${expected.sha256}`;
  return undefined;
}

async function upload(registry: Registry, prefix: string, name: string, bytes: Uint8Array): Promise<void> {
  try {
    await registry.put(`${prefix}${name}`, bytes);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new PublishError(`uploading ${prefix}${name}: ${reason}`, name, { cause: error });
  }
}

async function readLocal(dir: string, name: string): Promise<Uint8Array> {
  try {
    return await readFile(join(dir, name));
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new PublishError(`cannot read ${join(dir, name)}: ${reason}`, name, { cause: error });
  }
}

/** The manifest fields publishing needs, checked: id, version, and files with sha256 + bytes each. */
function parseManifest(
  bytes: Uint8Array,
  where: string,
): { id: string; version: string; files: Record<string, FileInfo> } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(bytes));
  } catch (error) {
    throw new PublishError(`${where} is not JSON: ${String(error)}`, MANIFEST);
  }
  if (typeof parsed !== "object" || parsed === null)
    throw new PublishError(`${where} is not an object`, MANIFEST);
  const { id, version, files } = parsed as { id?: unknown; version?: unknown; files?: unknown };
  if (typeof id !== "string" || typeof version !== "string")
    throw new PublishError(`${where}: id and version must be strings`, MANIFEST);
  if (typeof files !== "object" || files === null || Array.isArray(files) || Object.keys(files).length === 0)
    throw new PublishError(`${where}: files must list the directory's files`, MANIFEST);
  const checked: Record<string, FileInfo> = {};
  for (const [name, entry] of Object.entries(files)) {
    checkFileName(name, `${where}: files["${name}"]`);
    if (name === MANIFEST) throw new PublishError(`${where}: files lists manifest.json itself`, MANIFEST);
    const { sha256, bytes: size } = (entry ?? {}) as { sha256?: unknown; bytes?: unknown };
    if (typeof sha256 !== "string" || !/^[0-9a-fA-F]{64}$/.test(sha256))
      throw new PublishError(`${where}: files["${name}"].sha256 must be 64 hex digits`, name);
    if (typeof size !== "number" || !Number.isInteger(size) || size < 0)
      throw new PublishError(`${where}: files["${name}"].bytes must be a byte count`, name);
    checked[name] = { bytes: size, sha256: sha256.toLowerCase() };
  }
  return { id, version, files: checked };
}

/**
 * A file name is joined to a local folder and to a prefix: "..", absolute paths, backslashes and
 * empty segments could reach outside either, so only plain relative names pass.
 */
function checkFileName(name: string, where: string): void {
  const segments = name.split("/");
  if (name.includes("\\") || segments.some((s) => s === "" || s === "." || s === ".."))
    throw new PublishError(`${where}: "${name}" is not a plain relative file name`, name);
}

function byName<T>(a: [string, T], b: [string, T]): number {
  return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
}
