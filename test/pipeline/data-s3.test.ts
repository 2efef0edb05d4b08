/**
 * s3:// sources against a tiny S3 on 127.0.0.1 that answers ListObjectsV2 (two keys a page, so
 * the listing pages) and GetObject, through the real SDK client.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkData, resolveDataFiles } from "../../trainer/pipeline/data.ts";
import { s3ClientFromEnv } from "../../trainer/pipeline/s3-source.ts";
import { csvText, makeRows, spec, tempDir } from "./data-rows.ts";
import { type FakeS3, fakeS3 } from "./fake-s3.ts";

const rows = makeRows(30);
const objects = new Map<string, Buffer>([
  ["logs/day=1/part-0002.csv", Buffer.from(csvText(rows.slice(10, 30)))],
  ["logs/day=1/part-0001.csv", Buffer.from(csvText(rows.slice(0, 10)))],
  ["logs/day=1/_SUCCESS", Buffer.alloc(0)],
  ["logs/day=1/notes.txt", Buffer.from("x")],
  ["logs/day=1/sub/", Buffer.alloc(0)],
  ["logs/day=2/part-0001.csv", Buffer.from(csvText(rows.slice(0, 1)))],
  ["logs/evil/../../../escape.csv", Buffer.from(csvText(rows.slice(0, 1)))],
  ["logs/short/part.csv", Buffer.from(csvText(rows))],
]);
const requests: string[] = [];
let s3: FakeS3 | undefined;
let client: S3Client;

const xml = (text: string) => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

beforeAll(async () => {
  s3 = await fakeS3((req, res) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    requests.push(`${req.method} ${url.pathname}${url.search}`);
    const [, bucket, ...rest] = url.pathname.split("/");
    if (bucket !== "logs-bucket") {
      res.writeHead(404, { "content-type": "application/xml" });
      res.end(
        "<Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message></Error>",
      );
      return;
    }
    if (url.searchParams.get("list-type") === "2") {
      const prefix = url.searchParams.get("prefix") ?? "";
      const keys = [...objects.keys()].filter((k) => k.startsWith(prefix)).sort();
      const start = Number(url.searchParams.get("continuation-token") ?? "0");
      const page = keys.slice(start, start + 2);
      const more = start + 2 < keys.length;
      res.writeHead(200, { "content-type": "application/xml" });
      res.end(
        `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">` +
          `<Name>${bucket}</Name><Prefix>${xml(prefix)}</Prefix><KeyCount>${page.length}</KeyCount><MaxKeys>2</MaxKeys>` +
          `<IsTruncated>${more}</IsTruncated>${more ? `<NextContinuationToken>${start + 2}</NextContinuationToken>` : ""}` +
          page
            .map((k) => `<Contents><Key>${xml(k)}</Key><Size>${objects.get(k)!.length}</Size></Contents>`)
            .join("") +
          "</ListBucketResult>",
      );
      return;
    }
    const key = decodeURIComponent(rest.join("/"));
    const body = objects.get(key);
    if (!body) {
      res.writeHead(404, { "content-type": "application/xml" });
      res.end("<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>");
      return;
    }
    // One object's body is cut short, as a dropped connection would leave it.
    const sent = key === "logs/short/part.csv" ? body.subarray(0, 20) : body;
    res.writeHead(200, { "content-type": "application/octet-stream", "content-length": String(sent.length) });
    res.end(sent);
  });
  client = s3.client;
});

afterAll(async () => {
  await s3?.close();
});

describe("s3:// sources", () => {
  it("downloads the data files under the prefix, every page, in key order", async () => {
    const work = await tempDir();
    const files = await resolveDataFiles("s3://logs-bucket/logs/day=1/", { workDir: work, s3: client });
    const root = join(work, "s3", "logs-bucket", "logs", "day=1");
    expect(files).toEqual([join(root, "part-0001.csv"), join(root, "part-0002.csv")]);
    expect(await readFile(files[1]!, "utf8")).toBe(csvText(rows.slice(10, 30)));
    expect(requests.filter((r) => r.includes("list-type=2")).length).toBeGreaterThan(1);
    const check = await checkData(files, spec, { maxBadRows: 0 });
    expect(check.kept).toBe(30);
  });

  it("names the bucket, a short download and a key that leaves the folder; an empty prefix is an empty day", async () => {
    const work = await tempDir();
    const at = (source: string) => resolveDataFiles(source, { workDir: work, s3: client });
    await expect(at("s3://other-bucket/logs/")).rejects.toThrow(
      "s3://other-bucket/logs/: cannot list: NoSuchBucket",
    );
    await expect(at("s3://logs-bucket/logs/short/")).rejects.toThrow("s3://logs-bucket/logs/short/part.csv:");
    await expect(at("s3://logs-bucket/logs/evil/")).rejects.toThrow("the key leaves the download folder");
    await expect(at("s3://logs-bucket/logs/day=9/")).rejects.toThrow(
      "no rows in s3://logs-bucket/logs/day=9/",
    );
    await expect(resolveDataFiles("s3://logs-bucket/logs/")).rejects.toThrow("needs a work folder");
  });

  it("takes credentials from the environment only", async () => {
    await expect(s3ClientFromEnv({})).rejects.toThrow("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY");
    const made = await s3ClientFromEnv({
      AWS_ACCESS_KEY_ID: "id",
      AWS_SECRET_ACCESS_KEY: "secret",
      AWS_REGION: "eu-west-1",
      AWS_ENDPOINT_URL_S3: "http://127.0.0.1:1",
    });
    expect(await made.config.region()).toBe("eu-west-1");
    expect((await made.config.credentials()).accessKeyId).toBe("id");
    expect(made.config.forcePathStyle).toBe(true);
    made.destroy();
  });
});
