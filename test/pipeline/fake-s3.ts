/**
 * An S3 endpoint on a local port for the pipeline's s3:// tests: the handler answers each request
 * (path style: /bucket/key); the client talks to it with test credentials and one attempt, so a
 * failure shows at once instead of after the SDK's retries.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { S3Client } from "@aws-sdk/client-s3";

export interface FakeS3 {
  client: S3Client;
  close(): Promise<void>;
}

/** An object the bucket holds: its bytes and when it was last modified. */
export interface FakeObject {
  body: Buffer;
  modified: Date;
}

/**
 * A bucket's handler over `objects` (key -> object): ListObjectsV2 of a prefix in one page, with
 * each key's LastModified and Size, and GET of a key (its key pushed onto `gets`; 404 when absent).
 */
export function bucketHandler(
  bucket: string,
  objects: ReadonlyMap<string, FakeObject>,
  gets: string[],
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    if (url.searchParams.get("list-type") === "2") {
      const prefix = url.searchParams.get("prefix") ?? "";
      const keys = [...objects.keys()].filter((k) => k.startsWith(prefix)).sort();
      res.writeHead(200, { "content-type": "application/xml" });
      res.end(
        `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">` +
          `<Name>${bucket}</Name><Prefix>${prefix}</Prefix><KeyCount>${keys.length}</KeyCount><IsTruncated>false</IsTruncated>` +
          keys
            .map((k) => {
              const o = objects.get(k)!;
              return `<Contents><Key>${k}</Key><LastModified>${o.modified.toISOString()}</LastModified><Size>${o.body.length}</Size></Contents>`;
            })
            .join("") +
          "</ListBucketResult>",
      );
      return;
    }
    const key = decodeURIComponent(url.pathname.split("/").slice(2).join("/"));
    gets.push(key);
    const o = objects.get(key);
    res.writeHead(o ? 200 : 404, { "content-type": "application/octet-stream" });
    res.end(o?.body ?? "");
  };
}

export async function fakeS3(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<FakeS3> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const client = new S3Client({
    endpoint: `http://127.0.0.1:${port}`,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: "test", secretAccessKey: "test" },
    maxAttempts: 1,
  });
  return {
    client,
    close: async () => {
      client.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
