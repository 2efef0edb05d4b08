/**
 * The worker isolate's memory through the DevTools protocol that `wrangler dev` exposes
 * (`--inspector-port`, one client at a time; its proxy wants an Origin header on localhost), and
 * the workerd process's from /proc.
 *
 * What each figure measures:
 * - Runtime.getHeapUsage: usedSize / totalSize = the V8 JS heap of the worker's isolate (objects,
 *   compiled code), used and committed; backingStorageSize = the bytes behind its ArrayBuffers and
 *   external strings (the model files read from R2, the ORT snapshot). Cheap: sampled under load.
 * - WebAssembly.Memory: onnxruntime-web's linear memory (sessions, weights as ORT holds them,
 *   tensors), in NEITHER of the above. Found with Runtime.queryObjects, which walks the heap (a
 *   full GC first): measured only before and after the load, not during it. Wasm memory only
 *   grows, so the figure after the load is its peak.
 * - isolate estimate = committed JS heap + array-buffer backing stores + wasm memory: what counts
 *   against a Worker isolate's 128 MB (JS heap and WebAssembly allocations).
 * - workerd VmRSS / VmHWM (/proc): wrangler dev runs two workerd processes. "runtime" runs the
 *   isolate, Miniflare's helper workers (R2/KV simulators…) and holds the compiled ORT wasm code
 *   (a 14 MB module): seen ~160 MiB after start-up and ~300 MiB after the first reranks, then
 *   growing slowly, none of which the isolate's figures above show. "proxy" is wrangler's, on the
 *   public port: seen growing by 40-60 KB per request on any route, GET /healthz included. Whole
 *   processes of the local dev stack, not the isolate's footprint.
 */

export interface HeapUsage {
  /** V8 heap in use. */
  usedSize: number;
  /** V8 heap committed. */
  totalSize: number;
  /** ArrayBuffer and external string backing stores. */
  backingStorageSize: number;
  embedderHeapUsedSize: number;
}

export interface IsolateMemory extends HeapUsage {
  /** Byte length of each WebAssembly.Memory in the isolate (onnxruntime-web has one). */
  wasmMemories: number[];
  /** ArrayBuffers reachable in the isolate: count and bytes (a cross-check of backingStorageSize). */
  arrayBuffers: { count: number; bytes: number };
  /** totalSize + backingStorageSize + Σ wasmMemories. */
  estimate: number;
}

interface CdpMessage {
  id?: number;
  method?: string;
  params?: Record<string, unknown>;
  result?: Record<string, unknown>;
  error?: { message: string };
}

/** Our ids stay below the proxy's own (it numbers its messages from 100000000). */
const OBJECT_GROUP = "mtrank-load-edge";

export class Inspector {
  private nextId = 1;
  private readonly pending = new Map<number, (m: CdpMessage) => void>();
  private readonly contextWaiters: ((id: number) => void)[] = [];
  private closed = false;

  private constructor(private readonly ws: WebSocket) {
    ws.addEventListener("message", (event) => {
      const m = JSON.parse(String(event.data)) as CdpMessage;
      if (m.method === "Runtime.executionContextCreated") {
        const id = (m.params?.context as { id?: number } | undefined)?.id;
        if (typeof id === "number") for (const w of this.contextWaiters.splice(0)) w(id);
      }
      if (m.id !== undefined) {
        const resolve = this.pending.get(m.id);
        if (resolve) {
          this.pending.delete(m.id);
          resolve(m);
        }
      }
    });
    ws.addEventListener("close", () => {
      this.closed = true;
    });
  }

  static async connect(url: string, timeoutMs = 10_000): Promise<Inspector> {
    const ws = new WebSocket(url, { headers: { origin: "http://127.0.0.1" } });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        ws.close();
        reject(new Error(`inspector ${url}: no connection within ${timeoutMs} ms`));
      }, timeoutMs);
      ws.addEventListener("open", () => {
        clearTimeout(timer);
        resolve();
      });
      ws.addEventListener("close", (e) => {
        clearTimeout(timer);
        reject(new Error(`inspector ${url} closed: ${e.code} ${e.reason}`));
      });
      ws.addEventListener("error", () => {
        clearTimeout(timer);
        reject(new Error(`inspector ${url}: connection failed`));
      });
    });
    return new Inspector(ws);
  }

  async send(method: string, params: Record<string, unknown> = {}, timeoutMs = 10_000): Promise<CdpMessage> {
    if (this.closed) throw new Error("inspector: connection closed");
    const id = this.nextId++;
    return await new Promise<CdpMessage>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`inspector: ${method} unanswered after ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, (m) => {
        clearTimeout(timer);
        if (m.error) reject(new Error(`inspector: ${method}: ${m.error.message}`));
        else resolve(m);
      });
      this.ws.send(JSON.stringify({ id, method, params }));
    });
  }

  async heapUsage(): Promise<HeapUsage> {
    const r = (await this.send("Runtime.getHeapUsage")).result as Partial<HeapUsage> | undefined;
    return {
      usedSize: r?.usedSize ?? Number.NaN,
      totalSize: r?.totalSize ?? Number.NaN,
      backingStorageSize: r?.backingStorageSize ?? Number.NaN,
      embedderHeapUsedSize: r?.embedderHeapUsedSize ?? Number.NaN,
    };
  }

  /**
   * The id of the worker's execution context: the proxy enabled Runtime before we came, so
   * V8 only announces the context again on a fresh Runtime.enable.
   */
  private async contextId(): Promise<number> {
    const announced = new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("inspector: no execution context announced")), 5000);
      this.contextWaiters.push((id) => {
        clearTimeout(timer);
        resolve(id);
      });
    });
    await this.send("Runtime.disable");
    await this.send("Runtime.enable");
    return await announced;
  }

  /** Heap usage, wasm memories and ArrayBuffers: walks the heap, so not while under load. */
  async isolateMemory(): Promise<IsolateMemory> {
    const contextId = await this.contextId();
    const sizes = async (prototype: string, fn: string): Promise<unknown> => {
      const proto = await this.send("Runtime.evaluate", {
        expression: prototype,
        contextId,
        objectGroup: OBJECT_GROUP,
      });
      const protoId = (proto.result?.result as { objectId?: string } | undefined)?.objectId;
      if (!protoId) throw new Error(`inspector: ${prototype} has no object id`);
      const found = await this.send(
        "Runtime.queryObjects",
        { prototypeObjectId: protoId, objectGroup: OBJECT_GROUP },
        30_000,
      );
      const arrayId = (found.result?.objects as { objectId?: string } | undefined)?.objectId;
      if (!arrayId) throw new Error(`inspector: queryObjects(${prototype}) returned nothing`);
      const value = await this.send("Runtime.callFunctionOn", {
        objectId: arrayId,
        functionDeclaration: fn,
        returnByValue: true,
        objectGroup: OBJECT_GROUP,
      });
      return (value.result?.result as { value?: unknown } | undefined)?.value;
    };
    try {
      const wasm = (await sizes(
        "WebAssembly.Memory.prototype",
        "function () { return this.map((m) => m.buffer.byteLength); }",
      )) as number[];
      const [count, bytes] = (await sizes(
        "ArrayBuffer.prototype",
        "function () { return [this.length, this.reduce((a, b) => a + b.byteLength, 0)]; }",
      )) as [number, number];
      const heap = await this.heapUsage();
      return {
        ...heap,
        wasmMemories: wasm,
        arrayBuffers: { count, bytes },
        estimate: heap.totalSize + heap.backingStorageSize + wasm.reduce((a, b) => a + b, 0),
      };
    } finally {
      // The query results hold references: let the isolate collect them again.
      await this.send("Runtime.releaseObjectGroup", { objectGroup: OBJECT_GROUP }).catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    const closed = new Promise((r) => this.ws.addEventListener("close", r));
    this.ws.close();
    await Promise.race([closed, new Promise((r) => setTimeout(r, 2000))]);
  }
}
