/**
 * The tfjs WebGPU backend in Node, on Dawn (the npm package `webgpu`: a prebuilt dawn.node that
 * drives Vulkan on Linux). Both packages are optional dependencies; nothing here loads unless a
 * caller asks for webgpu (or `auto` looks for a GPU).
 *
 *   startWebGpu({ software: false })   a hardware adapter or { ok: false, reason }
 *   startWebGpu({ software: true })    also a software one (Mesa's lavapipe, SwiftShader)
 *
 * Three things tfjs-backend-webgpu 4.22 does not do in Node, done here:
 * - It registers itself only when `navigator.gpu` exists as it is imported, and then asks that
 *   for an adapter of its own. Here the adapter is found first (so a software adapter can be
 *   refused, and the one used is the one logged) and the backend is registered over it.
 * - Its synchronous read (`dataSync`, which the training loop uses for every step's loss and the
 *   sparse embedding gradient) goes through an OffscreenCanvas, which Node has not. Here it is
 *   replaced by a copy into a mappable buffer that is waited for synchronously (readBufferSync).
 * - Dawn completes a mapAsync only when its events are processed, which dawn.node schedules with
 *   `globalThis.setImmediate`, i.e. after the current task; a synchronous loop would wait
 *   forever. Those ticks are queued here instead (hookDawnTicks), so a synchronous read can run
 *   them itself, while the event loop still runs them as before whenever it turns.
 */
import { promisify } from "node:util";
import * as tf from "@tensorflow/tfjs";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";

/** What the adapter says about itself (GPUAdapterInfo), as the log line prints it. */
export interface AdapterDescription {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** A software adapter (a CPU Vulkan driver such as lavapipe), not a GPU. */
  software: boolean;
}

export type WebGpuStart = { ok: true; adapter: AdapterDescription } | { ok: false; reason: string };

/** What to install when there is no adapter at all (one line, also test:gpu's failure). */
export const VULKAN_HINT =
  "install a Vulkan driver: the GPU vendor's (nvidia: its driver's Vulkan ICD), or Mesa's CPU one for tests " +
  "(Debian 12: apt-get install -t bookworm-backports mesa-vulkan-drivers libvulkan1)";

interface Dawn {
  gpu: GPU;
  backendModule: { WebGPUBackend: new (device: GPUDevice, info?: GPUAdapterInfo) => WebGPUBackend };
}

let dawn: Promise<Dawn | string> | null = null;
/** The adapter the registered "webgpu" backend runs on, once one is registered. */
let registered: { adapter: GPUAdapter; description: AdapterDescription } | null = null;

/** Loads dawn.node and the tfjs backend once; a string says why it could not. */
function loadDawn(): Promise<Dawn | string> {
  dawn ??= (async () => {
    let webgpu: { create(flags: string[]): GPU; globals: object };
    try {
      webgpu = (await import(/* @vite-ignore */ "webgpu")) as typeof webgpu;
    } catch (error) {
      // Not installed (npm ci --omit=optional), or dawn.node did not load: it needs glibc >= 2.34
      // and libstdc++ with GLIBCXX_3.4.30.
      return `the "webgpu" package (dawn.node) did not load: ${firstLine(error)} (npm ci installs it unless optional dependencies are omitted; dawn.node needs x86-64 or arm64 Linux with glibc >= 2.34, macOS or Windows)`;
    }
    // GPUBufferUsage, GPUMapMode and the other constants the backend reads as globals.
    Object.assign(globalThis, webgpu.globals);
    hookDawnTicks();
    const gpu = webgpu.create([]);
    // tfjs's backend checks navigator.gpu when it is constructed. Node 22 has a navigator
    // object (a getter on globalThis, so it cannot be replaced); older Node has none.
    const holder = globalThis as { navigator?: object };
    if (holder.navigator) Object.defineProperty(holder.navigator, "gpu", { value: gpu, configurable: true });
    else
      Object.defineProperty(globalThis, "navigator", { value: { gpu }, configurable: true, writable: true });
    try {
      // A CommonJS package: bundled as an ES module (scripts/bundle-gpu.ts) its exports may sit
      // under `default` only.
      const imported = (await import("@tensorflow/tfjs-backend-webgpu")) as Partial<Dawn["backendModule"]> & {
        default?: Dawn["backendModule"];
      };
      const backendModule = imported.WebGPUBackend ? (imported as Dawn["backendModule"]) : imported.default;
      if (!backendModule?.WebGPUBackend) return "@tensorflow/tfjs-backend-webgpu has no WebGPUBackend";
      return { gpu, backendModule };
    } catch (error) {
      return `@tensorflow/tfjs-backend-webgpu did not load: ${firstLine(error)}`;
    }
  })();
  return dawn;
}

const NO_ADAPTER = `no WebGPU adapter; ${VULKAN_HINT}`;

/** The adapter webgpu would run on, without starting it, or why there is none. */
export async function findAdapter(): Promise<AdapterDescription | string> {
  if (registered) return registered.description;
  const loaded = await loadDawn();
  if (typeof loaded === "string") return loaded;
  const adapter = await loaded.gpu.requestAdapter({ powerPreference: "high-performance" });
  return adapter ? describe(adapter.info) : NO_ADAPTER;
}

/**
 * Finds an adapter and makes it tfjs's backend. Dawn ranks discrete GPUs first, then integrated,
 * then CPU (software) adapters, so the one it returns is software only when no GPU is usable.
 */
export async function startWebGpu(options: { software: boolean }): Promise<WebGpuStart> {
  const loaded = await loadDawn();
  if (typeof loaded === "string") return { ok: false, reason: loaded };
  if (!registered) {
    const adapter = await loaded.gpu.requestAdapter({ powerPreference: "high-performance" });
    if (!adapter) return { ok: false, reason: NO_ADAPTER };
    registered = { adapter, description: describe(adapter.info) };
    registerBackend(adapter, loaded.backendModule.WebGPUBackend);
  }
  const { description } = registered;
  if (description.software && !options.software)
    return {
      ok: false,
      reason: `only a software adapter (${adapterLine(description)}), which is used only when asked for`,
    };
  let started = false;
  try {
    started = await tf.setBackend("webgpu");
  } catch {
    started = false;
  }
  // When the backend's factory fails, setBackend says false but the engine keeps "webgpu" as its
  // backend name (tf.getBackend() still says webgpu, with no backend behind it): check the
  // instance itself, and unregister the factory so the engine forgets the name.
  if (
    !started ||
    tf.getBackend() !== "webgpu" ||
    !(tf.backend() instanceof loaded.backendModule.WebGPUBackend)
  ) {
    if (tf.findBackendFactory("webgpu")) tf.removeBackend("webgpu");
    registered = null;
    return { ok: false, reason: `the webgpu backend did not start on ${adapterLine(description)}` };
  }
  patchReadSync(tf.backend() as WebGPUBackend);
  registerChunkedAddN();
  return { ok: true, adapter: description };
}

/** "vendor architecture device (description)", the parts the adapter fills in. */
export function adapterLine(a: AdapterDescription): string {
  const name = [a.vendor, a.architecture, a.device].filter((s) => s !== "").join(" ");
  const parts = [name, a.description && a.description !== name ? `(${a.description})` : ""].filter(Boolean);
  return `${parts.join(" ") || "unnamed adapter"}${a.software ? ", software adapter" : ""}`;
}

function describe(info: GPUAdapterInfo): AdapterDescription {
  // isFallbackAdapter moved from GPUAdapter to GPUAdapterInfo; dawn.node 0.6 has it on the info.
  const fallback = (info as GPUAdapterInfo & { isFallbackAdapter?: boolean }).isFallbackAdapter;
  return {
    vendor: info.vendor ?? "",
    architecture: info.architecture ?? "",
    device: info.device ?? "",
    description: info.description ?? "",
    software: fallback === true,
  };
}

/**
 * Registers "webgpu" over this adapter, replacing the factory the package registers itself (when
 * navigator.gpu existed at its import), with the limits tfjs's own factory asks for: the
 * adapter's maxima, so large batches fit in one storage buffer.
 */
function registerBackend(adapter: GPUAdapter, Backend: Dawn["backendModule"]["WebGPUBackend"]): void {
  if (tf.findBackendFactory("webgpu")) tf.removeBackend("webgpu");
  tf.registerBackend(
    "webgpu",
    async () => {
      const l = adapter.limits;
      const device = await adapter.requestDevice({
        requiredLimits: {
          maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
          maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
          maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
          maxBufferSize: l.maxBufferSize,
          maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
          maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
          // Not in tfjs's list; AddN binds one storage buffer per addend (below).
          maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
        },
      });
      return new Backend(device, adapter.info);
    },
    // Below cpu and wasm: never the default of a process that did not ask for it.
    0,
  );
}

/**
 * AddN in sums of at most maxStorageBuffersPerShaderStage - 1 inputs (the output takes one
 * binding). tfjs's webgpu AddN binds every addend at once, and the gradient of a tensor read by
 * many ops is the AddN of all their gradients: an MMoE's input feeds every expert and gate (20
 * addends for 8 experts and 2 tasks), over lavapipe's limit of 16 and the WebGPU default of 8.
 */
let addNChunked = false;
function registerChunkedAddN(): void {
  const original = tf.getKernel("AddN", "webgpu");
  if (addNChunked || !original) return;
  addNChunked = true;
  tf.unregisterKernel("AddN", "webgpu");
  tf.registerKernel({
    kernelName: "AddN",
    backendName: "webgpu",
    kernelFunc: (args) => {
      const backend = args.backend as unknown as BackendInternals & { disposeData(dataId: object): boolean };
      const max = Math.max(2, backend.device.limits.maxStorageBuffersPerShaderStage - 1);
      const add = (inputs: tf.TensorInfo[]) =>
        original.kernelFunc({ ...args, inputs: inputs as unknown as tf.NamedTensorInfoMap }) as tf.TensorInfo;
      let inputs = args.inputs as unknown as tf.TensorInfo[];
      const partial: tf.TensorInfo[] = [];
      while (inputs.length > max) {
        const next: tf.TensorInfo[] = [];
        for (let i = 0; i < inputs.length; i += max) {
          const chunk = inputs.slice(i, i + max);
          if (chunk.length === 1) next.push(chunk[0]!);
          else {
            const sum = add(chunk);
            partial.push(sum);
            next.push(sum);
          }
        }
        inputs = next;
      }
      const result = add(inputs);
      for (const t of partial) backend.disposeData(t.dataId);
      return result;
    },
  });
}

// ---- Synchronous reads ------------------------------------------------------------------------

/** The backend's fields a read uses (public in its .d.ts, or used as in its own async read). */
interface BackendInternals {
  device: GPUDevice;
  bufferManager: {
    acquireBuffer(size: number, usage: number): GPUBuffer;
    releaseBuffer(buffer: GPUBuffer): void;
  };
  commandEncoder: GPUCommandEncoder | null;
  tensorMap: {
    get(dataId: object): {
      values: tf.backend_util.BackendValues | null;
      dtype: tf.DataType;
      resource?: unknown;
    };
  };
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  submitQueue(): void;
}

const patched = new WeakSet<object>();

/** readSync as the backend's async read does it, waiting for the map synchronously. */
function patchReadSync(backend: WebGPUBackend): void {
  if (patched.has(backend)) return;
  patched.add(backend);
  const b = backend as unknown as BackendInternals;
  backend.readSync = (dataId: object) => {
    const data = b.tensorMap.get(dataId);
    if (data.values != null || data.dtype === "string") return data.values as tf.backend_util.BackendValues;
    const buffer = data.resource;
    if (data.dtype === "complex64" || !(buffer instanceof GPUBuffer))
      throw new Error(`webgpu: no synchronous read for a ${data.dtype} tensor outside a GPU buffer`);
    const values = tf.util.convertBackendValuesAndArrayBuffer(readBufferSync(b, buffer), data.dtype);
    // Cached on the CPU side as the async read does: later reads of the same tensor are free.
    data.values = values;
    return values;
  };
}

/** A synchronous read longer than this means the device is lost or hung. */
const READ_TIMEOUT_MS = 300_000;

function readBufferSync(b: BackendInternals, buffer: GPUBuffer): ArrayBuffer {
  const size = buffer.size;
  const staging = b.bufferManager.acquireBuffer(size, GPUBufferUsage.COPY_DST | GPUBufferUsage.MAP_READ);
  b.ensureCommandEncoderReady();
  b.endComputePassEncoder();
  b.commandEncoder!.copyBufferToBuffer(buffer, 0, staging, 0, size);
  b.submitQueue();
  // The promise settles in a microtask after the map is done; its state is read from mapState,
  // which Dawn updates while it processes events. A failed map leaves mapState "unmapped".
  staging.mapAsync(GPUMapMode.READ).catch(() => {});
  runDawnTicksUntil(() => staging.mapState !== "pending", READ_TIMEOUT_MS);
  if (staging.mapState !== "mapped")
    throw new Error(`webgpu: reading ${size} bytes back from the GPU failed (device lost?)`);
  const values = staging.getMappedRange().slice(0);
  staging.unmap();
  b.bufferManager.releaseBuffer(staging);
  return values;
}

// ---- Dawn's event ticks -----------------------------------------------------------------------

/** Dawn's pending "process events" ticks, in order. */
const ticks: (() => void)[] = [];
let drainScheduled = false;
let hooked = false;

/**
 * dawn.node schedules each tick as setImmediate(native function with no name). Those are queued
 * here and drained by one real immediate (so the event loop runs them as before), or run at once
 * by a synchronous read. Any other callback goes to the real setImmediate untouched.
 */
function hookDawnTicks(): void {
  if (hooked) return;
  hooked = true;
  const real = globalThis.setImmediate;
  const drain = () => {
    drainScheduled = false;
    for (const tick of ticks.splice(0)) tick();
  };
  const hook = (callback: (...args: unknown[]) => void, ...args: unknown[]) => {
    if (
      typeof callback !== "function" ||
      callback.name !== "" ||
      args.length > 0 ||
      !Function.prototype.toString.call(callback).includes("[native code]")
    )
      return real(callback, ...args);
    ticks.push(() => callback());
    if (!drainScheduled) {
      drainScheduled = true;
      real(drain);
    }
    // dawn.node ignores the handle; a dummy keeps the signature (nothing to clear).
    return undefined as unknown as NodeJS.Immediate;
  };
  // util.promisify(setImmediate) keeps working: it reads the original's custom promisified form.
  const custom = (real as unknown as Record<symbol, unknown>)[promisify.custom];
  Object.defineProperty(hook, promisify.custom, { value: custom, configurable: true });
  globalThis.setImmediate = hook as unknown as typeof setImmediate;
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));

/**
 * Runs Dawn's ticks until `done()`: spins for the first fraction of a millisecond (a GPU answers
 * within it), then sleeps 50 µs between ticks so that a CPU Vulkan driver (lavapipe computes on
 * this machine's cores) keeps the core this thread would spin on.
 */
function runDawnTicksUntil(done: () => boolean, timeoutMs: number): void {
  const started = performance.now();
  while (!done()) {
    const tick = ticks.shift();
    if (!tick) throw new Error("webgpu: waiting for the GPU with no Dawn event tick scheduled");
    tick();
    if (done()) return;
    const waited = performance.now() - started;
    if (waited > timeoutMs) throw new Error(`webgpu: no answer from the GPU in ${timeoutMs / 1000} s`);
    if (waited > 0.2) Atomics.wait(sleeper, 0, 0, 0.05);
  }
}

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split("\n")[0]!;
}
