/**
 * The remote registry's wiring, against a local fake of R2's S3 API and Cloudflare's KV REST API
 * (fake-cloudflare.ts): credentials from the environment only and never on the wire in the
 * clear or in errors, path-style object URLs, If-None-Match: * for ifAbsent, the KV key escaped
 * as one path segment, and the retries for 409, a response lost after a write, and KV 5xx.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { RegistryConfigError, RemoteRegistry } from "../../trainer/pipeline/registry/remote.ts";
import { type FakeCloudflare, startFakeCloudflare } from "./fake-cloudflare.ts";

const ACCOUNT = "0123456789abcdef0123456789abcdef";
const SECRET = "r2-secret-never-on-the-wire";
const TOKEN = "cf-api-token-kv-only";
const ENV = {
  R2_ACCESS_KEY_ID: "AKIDEXAMPLE",
  R2_SECRET_ACCESS_KEY: SECRET,
  CLOUDFLARE_ACCOUNT_ID: ACCOUNT,
  CLOUDFLARE_API_TOKEN: TOKEN,
  MTRANK_MODEL_POINTERS_ID: "ns-from-env",
};
const text = (s: string) => new TextEncoder().encode(s);

let fake: FakeCloudflare;
let registry: RemoteRegistry;

beforeAll(async () => {
  fake = await startFakeCloudflare({ bucket: "mtrank-models", accountId: ACCOUNT, apiToken: TOKEN });
  registry = new RemoteRegistry({ env: ENV, s3Endpoint: fake.s3Endpoint, apiBase: fake.apiBase });
});
afterAll(async () => {
  await registry?.close();
  await fake?.close();
});
afterEach(() => {
  fake.requests.length = 0;
});

describe("configuration", () => {
  it("names every missing or empty variable in one error, and no value", () => {
    const attempt = () =>
      new RemoteRegistry({
        env: { R2_ACCESS_KEY_ID: "AKID", R2_SECRET_ACCESS_KEY: SECRET, CLOUDFLARE_ACCOUNT_ID: " " },
      });
    expect(attempt).toThrow(RegistryConfigError);
    expect(attempt).toThrow(
      "remote registry: set CLOUDFLARE_ACCOUNT_ID, CLOUDFLARE_API_TOKEN, MTRANK_MODEL_POINTERS_ID in the environment",
    );
    expect(() => attempt()).not.toThrow(SECRET);
  });

  it("names the one missing variable", () => {
    const { R2_SECRET_ACCESS_KEY: _, ...rest } = ENV;
    expect(() => new RemoteRegistry({ env: rest })).toThrow(
      /^remote registry: set R2_SECRET_ACCESS_KEY in the environment \(it is missing or empty\)$/,
    );
  });

  it("takes the namespace id from the options before the environment, and describes the bucket only", () => {
    const { MTRANK_MODEL_POINTERS_ID: _, ...rest } = ENV;
    const r = new RemoteRegistry({ env: rest, namespaceId: "given", bucket: "other-bucket" });
    expect(r.namespaceId).toBe("given");
    expect(r.describe).toBe("r2:other-bucket");
    expect(registry.namespaceId).toBe("ns-from-env");
    expect(registry.describe).toBe("r2:mtrank-models");
  });
});

describe("objects over the S3 API", () => {
  it("signs with the access key id, path-style, and never sends the secret or the API token", async () => {
    await registry.put("models/x/model.onnx", text("bytes"));
    await registry.get("models/x/model.onnx");
    await registry.list("models/");
    await registry.delete("models/x/model.onnx");
    const s3 = fake.requests.filter((r) => r.url.startsWith("/mtrank-models"));
    expect(s3.map((r) => r.method)).toEqual(["PUT", "GET", "GET", "DELETE"]);
    expect(s3[0]!.url).toMatch(/^\/mtrank-models\/models\/x\/model\.onnx/);
    expect(s3[2]!.url).toMatch(/list-type=2/);
    for (const r of s3) {
      expect(r.headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/auto\/s3\//);
      const wire = JSON.stringify(r);
      expect(wire).not.toContain(SECRET);
      expect(wire).not.toContain(TOKEN);
    }
  });

  it("sends If-None-Match: * only for ifAbsent; a 412 reads as false", async () => {
    expect(await registry.put("locks/a", text("one"), { ifAbsent: true })).toBe(true);
    expect(await registry.put("locks/a", text("two"), { ifAbsent: true })).toBe(false);
    expect(await registry.put("locks/a", text("three"))).toBe(true);
    const puts = fake.requests.filter((r) => r.method === "PUT");
    expect(puts.map((r) => r.headers["if-none-match"])).toEqual(["*", "*", undefined]);
    expect(fake.objects.get("locks/a")!.bytes.toString()).toBe("three");
  });

  it("retries a conditional put R2 answered 409 (a concurrent conditional write)", async () => {
    fake.failNext.put.push(409, 409);
    expect(await registry.put("locks/b", text("mine"), { ifAbsent: true })).toBe(true);
    expect(fake.objects.get("locks/b")!.bytes.toString()).toBe("mine");
  });

  it("a conditional put whose response was lost after it landed still reads as won; another's object does not", async () => {
    // The SDK retries the 500; the retry meets the object the first try wrote and gets 412.
    fake.failNext.putAfterWrite.push(500);
    expect(await registry.put("locks/c", text("mine"), { ifAbsent: true })).toBe(true);
    await registry.put("locks/d", text("theirs"));
    fake.failNext.put.push(500);
    expect(await registry.put("locks/d", text("mine"), { ifAbsent: true })).toBe(false);
  });

  it("reads an etag without quotes, and an absent key as undefined; a wrong bucket is an error", async () => {
    await registry.put("e/1", text("x"));
    const stored = await registry.get("e/1");
    expect(stored?.etag).toBe(fake.objects.get("e/1")!.etag);
    expect(await registry.get("e/absent")).toBeUndefined();
    const wrong = new RemoteRegistry({
      env: ENV,
      bucket: "not-there",
      s3Endpoint: fake.s3Endpoint,
      apiBase: fake.apiBase,
    });
    await expect(wrong.get("e/1")).rejects.toThrow(/remote registry: R2 get e\/1: HTTP 404 NoSuchBucket/);
    await wrong.close();
  });
});

describe("pointers over the KV REST API", () => {
  it("escapes the key as one segment under the account and namespace, with the bearer token", async () => {
    await registry.setPointer("models/current", "models/abc/");
    expect(fake.kv.get("ns-from-env/models/current")).toBe("models/abc/");
    expect(await registry.getPointer("models/current")).toBe("models/abc/");
    const kv = fake.requests.filter((r) => r.url.includes("/storage/kv/"));
    expect(kv[0]!.url).toBe(
      `/client/v4/accounts/${ACCOUNT}/storage/kv/namespaces/ns-from-env/values/models%2Fcurrent`,
    );
    for (const r of kv) {
      expect(r.headers.authorization).toBe(`Bearer ${TOKEN}`);
      expect(JSON.stringify(r)).not.toContain(SECRET);
    }
  });

  it("tries a 5xx or 429 again", async () => {
    await registry.setPointer("models/challenger", "models/def/");
    fake.failNext.kv.push(503, 429);
    expect(await registry.getPointer("models/challenger")).toBe("models/def/");
  });

  it("fails with Cloudflare's message, never the token", async () => {
    const wrong = new RemoteRegistry({
      env: { ...ENV, CLOUDFLARE_API_TOKEN: "wrong-token-value" },
      s3Endpoint: fake.s3Endpoint,
      apiBase: fake.apiBase,
    });
    const failure = wrong.getPointer("models/current");
    await expect(failure).rejects.toThrow(
      "remote registry: KV GET models/current: HTTP 401: Authentication error",
    );
    await expect(failure).rejects.not.toThrow("wrong-token-value");
    await wrong.close();
  });

  it("a 404 about anything but the key (a wrong namespace) is an error, not an absent pointer", async () => {
    fake.failNext.kv.push(404);
    await expect(registry.getPointer("models/current")).rejects.toThrow(
      "remote registry: KV GET models/current: HTTP 404: injected failure",
    );
  });

  it("deleting an absent pointer is no error", async () => {
    await registry.deletePointer("models/challenger");
    await registry.deletePointer("models/challenger");
    expect(await registry.getPointer("models/challenger")).toBeUndefined();
  });
});
