/**
 * Just enough of R2's S3 API and Cloudflare's KV REST API, on 127.0.0.1, to test the remote
 * registry's client wiring without the network: path-style PUT/GET/HEAD/DELETE of objects (PUT
 * honours If-None-Match: *), ListObjectsV2 with continuation tokens, and the KV values endpoint
 * with a bearer token. Every request is recorded for the tests to inspect.
 */
import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface RecordedRequest {
  method: string;
  /** Path and query, as sent. */
  url: string;
  headers: IncomingMessage["headers"];
}

export interface FakeCloudflare {
  /** `http://127.0.0.1:<port>`: the registry's s3Endpoint. */
  s3Endpoint: string;
  /** `http://127.0.0.1:<port>/client/v4`: the registry's apiBase. */
  apiBase: string;
  objects: Map<string, { bytes: Buffer; etag: string }>;
  /** KV: `<namespace id>/<key>` -> value. */
  kv: Map<string, string>;
  requests: RecordedRequest[];
  /**
   * Statuses to answer the next requests of a kind with, before serving normally: `put` fails
   * without writing, `putAfterWrite` writes and then answers the error (a response lost after
   * the write landed).
   */
  failNext: { kv: number[]; put: number[]; putAfterWrite: number[] };
  close(): Promise<void>;
}

export interface FakeOptions {
  bucket: string;
  accountId: string;
  apiToken: string;
  /** Keys per ListObjectsV2 page (S3's max-keys), small to exercise continuation. */
  pageSize?: number;
}

export async function startFakeCloudflare(options: FakeOptions): Promise<FakeCloudflare> {
  const objects = new Map<string, { bytes: Buffer; etag: string }>();
  const kv = new Map<string, string>();
  const requests: RecordedRequest[] = [];
  const failNext = { kv: [] as number[], put: [] as number[], putAfterWrite: [] as number[] };
  const pageSize = options.pageSize ?? 1000;
  const kvPath = `/client/v4/accounts/${options.accountId}/storage/kv/namespaces/`;

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      requests.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers });
      const url = new URL(req.url ?? "/", "http://fake");
      try {
        if (url.pathname.startsWith(kvPath)) kvRoute(req, res, url, Buffer.concat(chunks));
        else s3Route(req, res, url, Buffer.concat(chunks));
      } catch (error) {
        res.writeHead(500).end(String(error));
      }
    });
  });

  function kvRoute(req: IncomingMessage, res: ServerResponse, url: URL, body: Buffer) {
    const json = (status: number, value: unknown) =>
      res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(value));
    if (req.headers.authorization !== `Bearer ${options.apiToken}`)
      return json(401, { success: false, errors: [{ code: 10000, message: "Authentication error" }] });
    const failure = failNext.kv.shift();
    if (failure)
      return json(failure, { success: false, errors: [{ code: 10013, message: "injected failure" }] });
    // <namespace>/values/<key>: the key is one segment, its "/" escaped.
    const rest = url.pathname.slice(kvPath.length).split("/");
    if (rest.length !== 3 || rest[1] !== "values")
      return json(404, { success: false, errors: [{ message: "no route" }] });
    const id = `${decodeURIComponent(rest[0]!)}/${decodeURIComponent(rest[2]!)}`;
    if (req.method === "GET") {
      const value = kv.get(id);
      if (value === undefined)
        return json(404, { success: false, errors: [{ code: 10009, message: "get: 'key not found'" }] });
      return res.writeHead(200, { "content-type": "application/octet-stream" }).end(value);
    }
    if (req.method === "PUT") {
      kv.set(id, body.toString("utf8"));
      return json(200, { success: true, errors: [], messages: [], result: {} });
    }
    if (req.method === "DELETE") {
      kv.delete(id);
      return json(200, { success: true, errors: [], messages: [], result: null });
    }
    return json(405, { success: false, errors: [{ message: "method" }] });
  }

  function s3Route(req: IncomingMessage, res: ServerResponse, url: URL, body: Buffer) {
    const xmlError = (status: number, code: string) =>
      res
        .writeHead(status, { "content-type": "application/xml" })
        .end(
          `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${code}</Message></Error>`,
        );
    if (!req.headers.authorization?.startsWith("AWS4-HMAC-SHA256 ")) return xmlError(403, "AccessDenied");
    const [, bucket, ...keyParts] = url.pathname.split("/");
    if (decodeURIComponent(bucket ?? "") !== options.bucket) return xmlError(404, "NoSuchBucket");
    const key = keyParts.map(decodeURIComponent).join("/");

    if (req.method === "GET" && key === "" && url.searchParams.get("list-type") === "2")
      return listObjects(res, url);
    if (req.method === "PUT") {
      const failure = failNext.put.shift();
      if (failure) return xmlError(failure, failure === 409 ? "ConditionalRequestConflict" : "InternalError");
      if (req.headers["if-none-match"] === "*" && objects.has(key))
        return xmlError(412, "PreconditionFailed");
      const etag = createHash("md5").update(body).digest("hex");
      objects.set(key, { bytes: body, etag });
      const lost = failNext.putAfterWrite.shift();
      if (lost) return xmlError(lost, "InternalError");
      return res.writeHead(200, { etag: `"${etag}"` }).end();
    }
    if (req.method === "GET" || req.method === "HEAD") {
      const object = objects.get(key);
      if (!object) return req.method === "HEAD" ? res.writeHead(404).end() : xmlError(404, "NoSuchKey");
      res.writeHead(200, {
        etag: `"${object.etag}"`,
        "content-length": object.bytes.byteLength,
        "content-type": "application/octet-stream",
      });
      return res.end(req.method === "GET" ? object.bytes : undefined);
    }
    if (req.method === "DELETE") {
      objects.delete(key);
      return res.writeHead(204).end();
    }
    return xmlError(405, "MethodNotAllowed");
  }

  function listObjects(res: ServerResponse, url: URL) {
    const prefix = url.searchParams.get("prefix") ?? "";
    const after = url.searchParams.get("continuation-token") ?? "";
    const keys = [...objects.keys()]
      .filter((k) => k.startsWith(prefix) && k > after)
      .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    const page = keys.slice(0, pageSize);
    const truncated = keys.length > page.length;
    const contents = page
      .map((k) => {
        const o = objects.get(k)!;
        return `<Contents><Key>${xml(k)}</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified><ETag>"${o.etag}"</ETag><Size>${o.bytes.byteLength}</Size><StorageClass>STANDARD</StorageClass></Contents>`;
      })
      .join("");
    // The continuation token is the last key of the page: enough for a fake, opaque to the client.
    const next = truncated ? `<NextContinuationToken>${xml(page.at(-1)!)}</NextContinuationToken>` : "";
    res
      .writeHead(200, { "content-type": "application/xml" })
      .end(
        `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>${xml(options.bucket)}</Name><Prefix>${xml(prefix)}</Prefix><KeyCount>${page.length}</KeyCount><MaxKeys>${pageSize}</MaxKeys><IsTruncated>${truncated}</IsTruncated>${contents}${next}</ListBucketResult>`,
      );
  }

  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  const { port } = server.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;
  return {
    s3Endpoint: origin,
    apiBase: `${origin}/client/v4`,
    objects,
    kv,
    requests,
    failNext,
    close: () =>
      new Promise<void>((done, fail) => {
        server.closeAllConnections();
        server.close((error) => (error ? fail(error) : done()));
      }),
  };
}

function xml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}
