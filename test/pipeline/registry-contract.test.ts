/**
 * The Registry contract (trainer/pipeline/contracts.ts), the same checks against each registry:
 * in memory, over wrangler's local state (one workerd process), and remote against a local fake
 * of R2's S3 API and the KV REST API.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Registry } from "../../trainer/pipeline/contracts.ts";
import { LocalRegistry } from "../../trainer/pipeline/registry/local.ts";
import { RemoteRegistry } from "../../trainer/pipeline/registry/remote.ts";
import { type FakeCloudflare, startFakeCloudflare } from "./fake-cloudflare.ts";
import { MemoryRegistry } from "./memory-registry.ts";

const text = (s: string) => new TextEncoder().encode(s);
const read = (b: Uint8Array | undefined) => (b ? new TextDecoder().decode(b) : undefined);

interface Subject {
  registry: Registry;
  close(): Promise<void>;
}

const SUBJECTS: Record<string, () => Promise<Subject>> = {
  memory: async () => ({ registry: new MemoryRegistry(), close: async () => {} }),
  local: async () => {
    const dir = await mkdtemp(join(tmpdir(), "mtrank-registry-"));
    const registry = new LocalRegistry({ persistTo: dir });
    return {
      registry,
      close: async () => {
        await registry.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
  },
  remote: async () => {
    const secrets = { accountId: "acct123", apiToken: "token-xyz" };
    const fake: FakeCloudflare = await startFakeCloudflare({
      bucket: "mtrank-models",
      ...secrets,
      pageSize: 2,
    });
    const registry = new RemoteRegistry({
      namespaceId: "ns1",
      s3Endpoint: fake.s3Endpoint,
      apiBase: fake.apiBase,
      env: {
        R2_ACCESS_KEY_ID: "AKID",
        R2_SECRET_ACCESS_KEY: "SECRET",
        CLOUDFLARE_ACCOUNT_ID: secrets.accountId,
        CLOUDFLARE_API_TOKEN: secrets.apiToken,
      },
    });
    return {
      registry,
      close: async () => {
        await registry.close();
        await fake.close();
      },
    };
  },
};

describe.each(Object.keys(SUBJECTS))("%s registry", (kind) => {
  let subject: Subject;
  let registry: Registry;
  beforeAll(async () => {
    subject = await SUBJECTS[kind]!();
    registry = subject.registry;
  }, 60_000);
  afterAll(async () => subject?.close());

  it("puts, gets with an etag, overwrites, deletes; an absent key reads undefined", async () => {
    expect(await registry.get("a/missing")).toBeUndefined();
    expect(await registry.put("a/one", text("first"))).toBe(true);
    const first = await registry.get("a/one");
    expect(read(first?.bytes)).toBe("first");
    expect(first?.etag).toMatch(/^[^"]+$/);
    expect(await registry.put("a/one", text("second"))).toBe(true);
    const second = await registry.get("a/one");
    expect(read(second?.bytes)).toBe("second");
    expect(second?.etag).not.toBe(first?.etag);
    await registry.delete("a/one");
    expect(await registry.get("a/one")).toBeUndefined();
    // Deleting what is not there is no error.
    await registry.delete("a/one");
  });

  it("stores exactly the bytes of a view into a larger buffer, binary included", async () => {
    const backing = new Uint8Array(256).map((_, i) => i);
    const view = backing.subarray(10, 20);
    await registry.put("b/view", view);
    expect([...(await registry.get("b/view"))!.bytes]).toEqual([10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
  });

  it("ifAbsent writes only when no object has the key", async () => {
    expect(await registry.put("c/once", text("mine"), { ifAbsent: true })).toBe(true);
    expect(await registry.put("c/once", text("theirs"), { ifAbsent: true })).toBe(false);
    expect(read((await registry.get("c/once"))?.bytes)).toBe("mine");
  });

  it("of concurrent ifAbsent puts exactly one wins, and its bytes are stored", async () => {
    for (let round = 0; round < 3; round++) {
      const key = `d/race-${round}`;
      const results = await Promise.all(
        Array.from({ length: 12 }, (_, i) => registry.put(key, text(`writer ${i}`), { ifAbsent: true })),
      );
      expect(results.filter(Boolean)).toHaveLength(1);
      expect(read((await registry.get(key))?.bytes)).toBe(`writer ${results.indexOf(true)}`);
    }
  });

  it("lists the keys under a prefix, in key order, across pages", async () => {
    for (const key of ["e/2", "e/10", "e/1", "e/sub/x", "f/1", "e-not"]) await registry.put(key, text(key));
    expect(await registry.list("e/")).toEqual(["e/1", "e/10", "e/2", "e/sub/x"]);
    expect(await registry.list("nothing/")).toEqual([]);
  });

  it("sets, reads and deletes the pointers, independently", async () => {
    expect(await registry.getPointer("models/current")).toBeUndefined();
    await registry.setPointer("models/current", "models/aaa/");
    await registry.setPointer("models/challenger", "models/bbb/");
    expect(await registry.getPointer("models/current")).toBe("models/aaa/");
    await registry.setPointer("models/current", "models/ccc/");
    expect(await registry.getPointer("models/current")).toBe("models/ccc/");
    await registry.deletePointer("models/challenger");
    expect(await registry.getPointer("models/challenger")).toBeUndefined();
    expect(await registry.getPointer("models/current")).toBe("models/ccc/");
    await registry.deletePointer("models/challenger");
  });

  it("describes where it writes", () => {
    expect(registry.describe).toMatch(/^(memory|local|r2):/);
  });
});
