/**
 * A Registry in process memory, for the tests of the pipeline's steps, where starting workerd or
 * reaching Cloudflare is beside the point. Each call yields to the event loop
 * first, so concurrent callers interleave as they would against a real store.
 */
import { randomUUID } from "node:crypto";
import type { PointerName, Registry, StoredObject } from "../../trainer/pipeline/contracts.ts";

/** A Registry held in Maps; `objects` and `pointers` are open for tests to inspect or tamper with. */
export class MemoryRegistry implements Registry {
  readonly describe = "memory:";
  /** Key -> object, as the bucket holds it. */
  readonly objects = new Map<string, StoredObject>();
  /** Pointer name -> prefix, as the KV namespace holds it. */
  readonly pointers = new Map<PointerName, string>();

  async get(key: string): Promise<StoredObject | undefined> {
    await Promise.resolve();
    const object = this.objects.get(key);
    // A copy, so a caller that edits what it read does not edit the store.
    return object && { bytes: object.bytes.slice(), etag: object.etag };
  }

  async put(key: string, bytes: Uint8Array, options: { ifAbsent?: boolean } = {}): Promise<boolean> {
    await Promise.resolve();
    // The check and the write run in one turn of the event loop: atomic, like R2's conditional put.
    if (options.ifAbsent && this.objects.has(key)) return false;
    this.objects.set(key, { bytes: bytes.slice(), etag: randomUUID().replaceAll("-", "") });
    return true;
  }

  async delete(key: string): Promise<void> {
    await Promise.resolve();
    this.objects.delete(key);
  }

  async list(prefix: string): Promise<string[]> {
    await Promise.resolve();
    return [...this.objects.keys()].filter((key) => key.startsWith(prefix)).sort(byCodePoint);
  }

  async getPointer(name: PointerName): Promise<string | undefined> {
    await Promise.resolve();
    return this.pointers.get(name);
  }

  async setPointer(name: PointerName, prefix: string): Promise<void> {
    await Promise.resolve();
    this.pointers.set(name, prefix);
  }

  async deletePointer(name: PointerName): Promise<void> {
    await Promise.resolve();
    this.pointers.delete(name);
  }
}

/** R2 and S3 list keys in UTF-8 byte order; for the ASCII keys the pipeline writes, code point order is that. */
function byCodePoint(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
