/**
 * publishModel / verifyPrefix / flipPointer on the fixture model (fixtures/model/), in memory:
 * content-addressed prefix, manifest.json last, every object read back and verified, and a
 * pointer that never names a directory that is not whole, including after an upload that dies
 * half way, which a second publish of the same directory completes.
 */
import { cp, readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fetchRemoteModel } from "../../edge/model/remote.ts";
import type { Registry, StoredObject } from "../../trainer/pipeline/contracts.ts";
import { sha256Hex } from "../../trainer/pipeline/registry/keys.ts";
import {
  flipPointer,
  PublishError,
  publishModel,
  verifyPrefix,
} from "../../trainer/pipeline/registry/publish.ts";
import { type FixtureModels, fixtureModels } from "./fixture-models.ts";
import { MemoryRegistry } from "./memory-registry.ts";

let models: FixtureModels | undefined;
/** The folder holding both copies, and the directories tests make beside them. */
let tmp: string;
/** A copy of fixtures/model/ (model A). */
let dirA: string;
/** Model A with another version in its manifest: the same files, another prefix (model B). */
let dirB: string;

beforeAll(async () => {
  models = await fixtureModels("mtrank-publish-");
  ({ dirA, dirB } = models);
  tmp = dirname(dirA);
});
afterAll(async () => {
  await models?.remove();
});

async function prefixOf(dir: string): Promise<string> {
  return `models/${sha256Hex(await readFile(join(dir, "manifest.json")))}/`;
}

/** A registry that records the keys put, and fails or corrupts chosen ones. */
class Faulty extends MemoryRegistry {
  puts: string[] = [];
  failPut: ((key: string) => boolean) | undefined;
  corruptGet: ((key: string) => boolean) | undefined;

  override async put(key: string, bytes: Uint8Array, options?: { ifAbsent?: boolean }): Promise<boolean> {
    if (this.failPut?.(key)) throw new Error("connection reset (simulated crash)");
    this.puts.push(key);
    return super.put(key, bytes, options);
  }

  override async get(key: string): Promise<StoredObject | undefined> {
    const stored = await super.get(key);
    if (stored && this.corruptGet?.(key)) stored.bytes[0]! ^= 0xff;
    return stored;
  }
}

/** The worker's R2 binding, over a registry: for checking with edge/model/remote.ts itself. */
function asBucket(registry: Registry) {
  return {
    async get(key: string) {
      const stored = await registry.get(key);
      if (!stored) return null;
      const bytes = stored.bytes;
      return {
        size: bytes.byteLength,
        arrayBuffer: async () => {
          const copy = new ArrayBuffer(bytes.byteLength);
          new Uint8Array(copy).set(bytes);
          return copy;
        },
        text: async () => new TextDecoder().decode(bytes),
      };
    },
  };
}

describe("publishModel", () => {
  it("uploads under models/<sha256 of manifest.json>/, manifest.json last, and returns what it verified", async () => {
    const registry = new Faulty();
    const published = await publishModel(registry, dirA);
    const prefix = await prefixOf(dirA);
    const manifest = JSON.parse(await readFile(join(dirA, "manifest.json"), "utf8")) as {
      id: string;
      version: string;
      files: Record<string, { bytes: number; sha256: string }>;
    };
    expect(published).toEqual({ prefix, id: manifest.id, version: manifest.version, files: manifest.files });
    expect(registry.puts).toEqual([`${prefix}model.onnx`, `${prefix}manifest.json`]);
    // Only what the manifest lists: requests.json and spec.json stay behind.
    expect(await registry.list("models/")).toEqual([`${prefix}manifest.json`, `${prefix}model.onnx`]);
    // The worker's own loader accepts it.
    const source = await fetchRemoteModel(asBucket(registry), prefix);
    expect(source.model.byteLength).toBe(manifest.files["model.onnx"]!.bytes);
  });

  it("is idempotent: publishing the same directory again lands at the same prefix and verifies", async () => {
    const registry = new MemoryRegistry();
    const first = await publishModel(registry, dirA);
    const second = await publishModel(registry, dirA);
    expect(second).toEqual(first);
    expect(await registry.list("models/")).toHaveLength(2);
  });

  it("refuses a directory whose files do not match its manifest before uploading anything", async () => {
    const dir = join(tmp, "tampered");
    await cp(dirA, dir, { recursive: true });
    const onnx = await readFile(join(dir, "model.onnx"));
    onnx[100]! ^= 1;
    await writeFile(join(dir, "model.onnx"), onnx);
    const registry = new MemoryRegistry();
    const failure = publishModel(registry, dir);
    await expect(failure).rejects.toThrow(PublishError);
    await expect(failure).rejects.toThrow(/model\.onnx: sha256 [0-9a-f]{64}, expected [0-9a-f]{64}/);
    await expect(failure).rejects.toMatchObject({ file: "model.onnx" });
    expect(registry.objects.size).toBe(0);
  });

  it("throws a PublishError naming the file when an object reads back wrong, and touches no pointer", async () => {
    const registry = new Faulty();
    await registry.setPointer("models/current", "models/previous/");
    registry.corruptGet = (key) => key.endsWith("/model.onnx");
    const failure = publishModel(registry, dirA);
    await expect(failure).rejects.toThrow(PublishError);
    await expect(failure).rejects.toMatchObject({ file: "model.onnx" });
    await expect(failure).rejects.toThrow(`${await prefixOf(dirA)}model.onnx: sha256`);
    expect(await registry.getPointer("models/current")).toBe("models/previous/");
  });

  it("checks manifest.json itself against its prefix when read back", async () => {
    const registry = new Faulty();
    registry.corruptGet = (key) => key.endsWith("/manifest.json");
    await expect(publishModel(registry, dirA)).rejects.toMatchObject({ file: "manifest.json" });
  });

  it("publishes extra files beside the manifest's, verified against the local bytes", async () => {
    const dir = join(tmp, "extra");
    await cp(dirA, dir, { recursive: true });
    await writeFile(join(dir, "data-stats.json"), '{"rows":3}\n');
    const registry = new MemoryRegistry();
    const published = await publishModel(registry, dir, { extraFiles: ["data-stats.json"] });
    expect(published.files["data-stats.json"]).toEqual({
      bytes: 11,
      sha256: sha256Hex(Buffer.from('{"rows":3}\n')),
    });
    expect(new TextDecoder().decode((await registry.get(`${published.prefix}data-stats.json`))!.bytes)).toBe(
      '{"rows":3}\n',
    );
    // check-paths: ignore (a path outside the model directory, which publish must refuse)
    await expect(publishModel(registry, dir, { extraFiles: ["../a/spec.json"] })).rejects.toThrow(
      /not a plain relative file name/,
    );
    await expect(publishModel(registry, dir, { extraFiles: ["model.onnx"] })).rejects.toThrow(
      /listed in it already/,
    );
  });

  it("refuses a manifest without usable files entries, naming the field", async () => {
    const dir = join(tmp, "bad-manifest");
    await cp(dirA, dir, { recursive: true });
    const manifest = JSON.parse(await readFile(join(dir, "manifest.json"), "utf8")) as {
      files: Record<string, unknown>;
    };
    manifest.files["model.onnx"] = { sha256: "abc", bytes: 3 };
    await writeFile(join(dir, "manifest.json"), JSON.stringify(manifest));
    await expect(publishModel(new MemoryRegistry(), dir)).rejects.toThrow(
      /files\["model\.onnx"\]\.sha256 must be 64 hex digits/,
    );
    // check-paths: ignore (a manifest naming a file outside its directory, which publish must refuse)
    manifest.files = { "../../etc/passwd": { sha256: "0".repeat(64), bytes: 1 } };
    await writeFile(join(dir, "manifest.json"), JSON.stringify(manifest));
    await expect(publishModel(new MemoryRegistry(), dir)).rejects.toThrow(/not a plain relative file name/);
    await expect(publishModel(new MemoryRegistry(), join(tmp, "nowhere"))).rejects.toThrow(
      /cannot read .*nowhere\/manifest\.json/,
    );
  });
});

describe("a publish killed between upload and flip", () => {
  it("leaves the pointer on the previous model; publishing again completes, verifies and flips", async () => {
    const registry = new Faulty();
    const a = await publishModel(registry, dirA);
    expect(await flipPointer(registry, "models/current", a)).toBeUndefined();

    // The run dies uploading B's model.onnx: no manifest.json under B's prefix, pointer on A.
    registry.failPut = (key) => key.endsWith("/model.onnx");
    const failure = publishModel(registry, dirB);
    await expect(failure).rejects.toThrow(PublishError);
    await expect(failure).rejects.toMatchObject({ file: "model.onnx" });
    const prefixB = await prefixOf(dirB);
    expect(await registry.getPointer("models/current")).toBe(a.prefix);
    expect(await registry.get(`${prefixB}manifest.json`)).toBeUndefined();
    // Nor can anything point at the half-published prefix.
    await expect(flipPointer(registry, "models/current", prefixB)).rejects.toThrow(
      `${prefixB}manifest.json is not in memory:`,
    );
    expect(await registry.getPointer("models/current")).toBe(a.prefix);

    // The next run publishes the same directory: it completes and verifies.
    registry.failPut = undefined;
    const b = await publishModel(registry, dirB);
    expect(b.prefix).toBe(prefixB);
    expect(await flipPointer(registry, "models/current", b)).toBe(a.prefix);
    expect(await registry.getPointer("models/current")).toBe(prefixB);
    await expect(fetchRemoteModel(asBucket(registry), prefixB)).resolves.toBeDefined();
  });

  it("dies after model.onnx but before manifest.json: the prefix has files and no manifest, the pointer stays", async () => {
    const registry = new Faulty();
    registry.failPut = (key) => key.endsWith("/manifest.json");
    await expect(publishModel(registry, dirA)).rejects.toMatchObject({ file: "manifest.json" });
    const prefix = await prefixOf(dirA);
    expect(await registry.list(prefix)).toEqual([`${prefix}model.onnx`]);
    expect(await registry.getPointer("models/current")).toBeUndefined();
    await expect(flipPointer(registry, "models/current", prefix)).rejects.toThrow(PublishError);
  });
});

describe("flipPointer", () => {
  it("verifies a bare prefix in full before pointing at it, and returns the previous one", async () => {
    const registry = new MemoryRegistry();
    const a = await publishModel(registry, dirA);
    const b = await publishModel(registry, dirB);
    await flipPointer(registry, "models/current", b);
    // A rollback by prefix (as a record holds it, trailing slash or not).
    expect(await flipPointer(registry, "models/current", a.prefix.slice(0, -1))).toBe(b.prefix);
    expect(await registry.getPointer("models/current")).toBe(a.prefix);

    // A directory damaged since it was published is refused, naming the file.
    await registry.put(`${b.prefix}model.onnx`, new Uint8Array([1, 2, 3]));
    const failure = flipPointer(registry, "models/challenger", b.prefix);
    await expect(failure).rejects.toMatchObject({ file: "model.onnx" });
    await expect(failure).rejects.toThrow("model.onnx: 3 bytes, expected");
    expect(await registry.getPointer("models/challenger")).toBeUndefined();
    await expect(flipPointer(registry, "models/current", "models/not-a-hash/")).rejects.toThrow(
      /is not a models\/<sha256>\/ prefix/,
    );
  });

  it("refuses a PublishedModel whose manifest is gone or changed since", async () => {
    const registry = new MemoryRegistry();
    const a = await publishModel(registry, dirA);
    await registry.delete(`${a.prefix}manifest.json`);
    await expect(flipPointer(registry, "models/current", a)).rejects.toThrow(/missing or changed since/);
    expect(await registry.getPointer("models/current")).toBeUndefined();
  });

  it("verifyPrefix returns the manifest's files for a whole directory", async () => {
    const registry = new MemoryRegistry();
    const a = await publishModel(registry, dirA);
    await expect(verifyPrefix(registry, a.prefix)).resolves.toEqual(a);
    // A manifest stored under the wrong hash is refused.
    const wrong = `models/${"0".repeat(64)}/`;
    await registry.put(`${wrong}manifest.json`, (await registry.get(`${a.prefix}manifest.json`))!.bytes);
    await expect(verifyPrefix(registry, wrong)).rejects.toThrow(/does not match its prefix/);
  });
});
