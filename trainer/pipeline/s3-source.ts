/**
 * s3://bucket/prefix data sources: the objects under the prefix are listed (ListObjectsV2, every
 * page) and downloaded into the work folder, where the rest of the pipeline reads them as local
 * files. The AWS SDK is imported when an s3:// source is first used, so runs on local data do not
 * load it. Credentials come from the environment only: the pipeline's config names no secrets.
 */
import { createWriteStream } from "node:fs";
import { mkdir, stat } from "node:fs/promises";
import { dirname, join, relative, sep } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ListObjectsV2CommandOutput, S3Client } from "@aws-sdk/client-s3";
import { DataError } from "../data/read-rows.ts";
import { isDataFileName } from "./rows.ts";

/**
 * An S3 client from the environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (and
 * AWS_SESSION_TOKEN for temporary credentials), AWS_REGION or AWS_DEFAULT_REGION (default
 * us-east-1), and AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL for an S3-compatible store (R2, MinIO),
 * addressed by path as those expect. Missing keys are an error that says which to set, rather
 * than the SDK's search of profiles and instance metadata.
 */
export async function s3ClientFromEnv(env: NodeJS.ProcessEnv = process.env): Promise<S3Client> {
  const accessKeyId = env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY;
  if (!accessKeyId || !secretAccessKey)
    throw new DataError(
      "s3:// data sources: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment",
    );
  const endpoint = env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL;
  const { S3Client } = await import("@aws-sdk/client-s3");
  return new S3Client({
    region: env.AWS_REGION || env.AWS_DEFAULT_REGION || "us-east-1",
    credentials: {
      accessKeyId,
      secretAccessKey,
      ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}),
    },
    ...(endpoint ? { endpoint, forcePathStyle: true } : {}),
  });
}

/** Bucket and key prefix of an s3:// URL. */
export function parseS3Url(source: string): { bucket: string; prefix: string } {
  const match = /^s3:\/\/([^/]+)\/?(.*)$/.exec(source);
  if (!match) throw new DataError(`${source}: expected s3://bucket/prefix`);
  return { bucket: match[1]!, prefix: match[2]! };
}

/** One data object of a listing. */
export interface S3Object {
  key: string;
  size: number | undefined;
  /** LastModified, ms since the epoch (undefined when the store does not say). */
  modifiedMs: number | undefined;
}

/** What ListObjectsV2 shows under an s3:// prefix. */
export interface S3Listing {
  bucket: string;
  prefix: string;
  /** The data objects, in key order (see downloadS3 for which keys are data). */
  objects: S3Object[];
  /** Every key listed, markers and folders included: a marker is looked up here. */
  keys: ReadonlySet<string>;
}

/**
 * Lists an s3:// prefix, every page: its data objects (keys whose last part has a data
 * extension and does not start with "." or "_", nor is named `exclude`: data.complete's marker)
 * and every key. One request per 1,000 keys.
 */
export async function listS3(source: string, client?: S3Client, exclude?: string): Promise<S3Listing> {
  const { bucket, prefix } = parseS3Url(source);
  const s3 = client ?? (await s3ClientFromEnv());
  const { ListObjectsV2Command } = await import("@aws-sdk/client-s3");
  const objects: S3Object[] = [];
  const keys = new Set<string>();
  let token: string | undefined;
  do {
    let page: ListObjectsV2CommandOutput;
    try {
      page = await s3.send(
        new ListObjectsV2Command({
          Bucket: bucket,
          Prefix: prefix,
          ...(token ? { ContinuationToken: token } : {}),
        }),
      );
    } catch (error) {
      throw new DataError(`${source}: cannot list: ${describe(error)}`);
    }
    for (const object of page.Contents ?? []) {
      const key = object.Key;
      if (key === undefined) continue;
      keys.add(key);
      if (key.endsWith("/")) continue;
      const name = key.slice(key.lastIndexOf("/") + 1);
      if (name.startsWith(".") || name.startsWith("_") || name === exclude || !isDataFileName(name)) continue;
      objects.push({ key, size: object.Size, modifiedMs: object.LastModified?.getTime() });
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  objects.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return { bucket, prefix, objects, keys };
}

/** Options of downloadS3. */
export interface DownloadOptions {
  /** A key whose last part is this name is not data (data.complete's marker). */
  exclude?: string;
  /**
   * Called with the listing before anything is downloaded; it throws to stop there (a source
   * that is not complete: ./complete.ts).
   */
  check?: (listing: S3Listing) => Promise<void>;
}

/**
 * Downloads the data files under an s3:// prefix (all of them, at any depth: S3 has no folders)
 * to `<workDir>/s3/<bucket>/<key>` and returns their paths in key order. Keys whose last part
 * starts with "." or "_" (Spark's _SUCCESS) or has no data extension are left out. A download
 * whose size differs from the listing's is an error naming the object.
 */
export async function downloadS3(
  source: string,
  workDir: string,
  client?: S3Client,
  options: DownloadOptions = {},
): Promise<string[]> {
  const s3 = client ?? (await s3ClientFromEnv());
  const listing = await listS3(source, s3, options.exclude);
  await options.check?.(listing);
  const { bucket, objects } = listing;
  const { GetObjectCommand } = await import("@aws-sdk/client-s3");

  const root = join(workDir, "s3", bucket);
  const files: string[] = [];
  for (const { key, size } of objects) {
    const url = `s3://${bucket}/${key}`;
    const path = join(root, key);
    // A key is a name the bucket chose: one with ".." parts must not write outside the folder.
    const inside = relative(root, path);
    if (inside === "" || inside.startsWith(`..${sep}`) || inside === "..")
      throw new DataError(`${url}: the key leaves the download folder`);
    await mkdir(dirname(path), { recursive: true });
    try {
      const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      const body = object.Body;
      if (body === undefined) throw new Error("no body");
      await pipeline(
        body instanceof Readable ? body : Readable.from([await body.transformToByteArray()]),
        createWriteStream(path),
      );
    } catch (error) {
      throw new DataError(`${url}: cannot download: ${describe(error)}`);
    }
    const written = (await stat(path)).size;
    if (size !== undefined && written !== size)
      throw new DataError(`${url}: downloaded ${written} bytes of ${size}`);
    files.push(path);
  }
  return files;
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  return error.name && error.name !== "Error" ? `${error.name}: ${error.message}` : error.message;
}
