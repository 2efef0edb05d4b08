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

/**
 * Downloads the data files under an s3:// prefix (all of them, at any depth: S3 has no folders)
 * to `<workDir>/s3/<bucket>/<key>` and returns their paths in key order. Keys whose last part
 * starts with "." or "_" (Spark's _SUCCESS) or has no data extension are left out. A download
 * whose size differs from the listing's is an error naming the object.
 */
export async function downloadS3(source: string, workDir: string, client?: S3Client): Promise<string[]> {
  const { bucket, prefix } = parseS3Url(source);
  const s3 = client ?? (await s3ClientFromEnv());
  const { GetObjectCommand, ListObjectsV2Command } = await import("@aws-sdk/client-s3");
  const objects: { key: string; size: number | undefined }[] = [];
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
      if (key === undefined || key.endsWith("/")) continue;
      const name = key.slice(key.lastIndexOf("/") + 1);
      if (name.startsWith(".") || name.startsWith("_") || !isDataFileName(name)) continue;
      objects.push({ key, size: object.Size });
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  objects.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));

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
