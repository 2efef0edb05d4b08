/**
 * The trainer's own WebAssembly SIMD kernels, run inside tfjs-backend-wasm's memory: float32
 * matrix products for the backend's BatchMatMul (./wasm-matmul-kernel.ts) and the dense
 * parameters' Adam step (./host-adam.ts). The module (its text, and why its loops are shaped as
 * they are: scripts/wasm-kernels-wat.ts) imports the backend's WebAssembly.Memory, so a kernel
 * reads and writes tensors at their own heap offsets, with no copy.
 *
 * Why not XNNPACK, which the backend already has: tfjs-backend-wasm creates an XNNPACK operator
 * and packs the weights on every call whose weight tensor it has not seen (training changes every
 * weight every step), and sends a transposed operand to a plain C++ loop, so a training step's
 * products ran at 6–15 GFLOP/s. These need no packing of B and read a transposed operand in
 * place; with fused multiply-adds they run a step's shapes at 28–45 GFLOP/s (docs/benchmarks.md).
 */
import * as tf from "@tensorflow/tfjs";
import { WASM_KERNELS_FUSED_BASE64, WASM_KERNELS_PLAIN_BASE64 } from "./wasm-kernels-binary.ts";

/** The heap of one tfjs-backend-wasm instance: its memory, and its allocator for the scratch. */
export interface WasmHeap {
  /** The backend module's WebAssembly.Memory. */
  memory: object;
  malloc(bytes: number): number;
  free(offset: number): void;
}

/** Products of row-major float32 matrices at byte offsets of the heap; C is [M, N], N % 4 = 0. */
export interface WasmGemm {
  /** C = A·B, A [M, K], B [K, N]. */
  nn(a: number, b: number, c: number, m: number, k: number, n: number): void;
  /** C = Aᵀ·B, A [K, M], B [K, N]. */
  tn(a: number, b: number, c: number, m: number, k: number, n: number): void;
  /** C = A·Bᵀ, A [M, K], B [N, K]. */
  nt(a: number, b: number, c: number, m: number, k: number, n: number): void;
}

/** The constants of one Adam step (float32 inside the kernel, as tfjs's optimiser computes). */
export interface AdamStep {
  beta1: number;
  beta2: number;
  epsilon: number;
  /** The learning rate over the first moment's bias correction, lr / (1 - β1^t). */
  step: number;
  /** 1 / (1 - β2^t). */
  correct2: number;
}

export interface WasmKernels {
  gemm: WasmGemm;
  /**
   * One Adam step over n float32 values at heap offsets: w, its gradient g (λ·w added first: an
   * L2 penalty λ/2·Σw²) and its moments m, v (updated in place); w's new values go to `out`.
   * Returns Σw² before the step.
   */
  adam(
    w: number,
    out: number,
    g: number,
    m: number,
    v: number,
    n: number,
    l2: number,
    constants: AdamStep,
  ): number;
  /** 16-aligned scratch of at least `bytes` in the heap, valid until the next call to a kernel. */
  scratch(bytes: number): number;
}

type Exported = (...args: number[]) => number;

/** The part of the WebAssembly namespace used here (the project's type libraries omit it). */
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, Exported> };
}

const wasmApi = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
const compiled = new Map<boolean, object>();
let fusedValid: boolean | null = null;

/** Whether this engine runs relaxed SIMD (Node 22's V8 does; the plain build is the fallback). */
export function hasFusedKernels(): boolean {
  fusedValid ??= wasmApi.validate(Buffer.from(WASM_KERNELS_FUSED_BASE64, "base64"));
  return fusedValid;
}

/**
 * The module bound to one heap (each build compiled once a process: 4 KB, synchronously).
 * `fused`: the relaxed-SIMD build; by default where the engine has it.
 */
export function createWasmKernels(heap: WasmHeap, fused = hasFusedKernels()): WasmKernels {
  let module = compiled.get(fused);
  if (!module) {
    module = new wasmApi.Module(
      Buffer.from(fused ? WASM_KERNELS_FUSED_BASE64 : WASM_KERNELS_PLAIN_BASE64, "base64"),
    );
    compiled.set(fused, module);
  }
  const { exports } = new wasmApi.Instance(module, { env: { memory: heap.memory } });
  const gemmNN = exports.gemm_nn!;
  const gemmTN = exports.gemm_tn!;
  const gemmNT = exports.gemm_nt!;
  const adam = exports.adam!;
  let panel = 0;
  let panelBytes = 0;
  /** Grown, never shrunk: a step asks for the same sizes again and again. */
  const scratch = (bytes: number): number => {
    if (bytes > panelBytes) {
      if (panel) heap.free(panel);
      panelBytes = Math.max(bytes, 2 * panelBytes, 64 * 1024);
      panel = heap.malloc(panelBytes + 16);
      if (!panel)
        throw new Error(`wasm kernels: the backend could not allocate ${panelBytes} bytes of scratch`);
    }
    return Math.ceil(panel / 16) * 16;
  };
  return {
    gemm: {
      nn: (a, b, c, m, k, n) => gemmNN(a, b, c, m, k, n),
      tn: (a, b, c, m, k, n) => gemmTN(a, b, c, m, k, n, scratch(16 * k)),
      nt: (a, b, c, m, k, n) => gemmNT(a, b, c, m, k, n, scratch(4 * k * n)),
    },
    adam: (w, out, g, m, v, n, l2, c) =>
      adam(w, out, g, m, v, n, c.beta1, 1 - c.beta1, c.beta2, 1 - c.beta2, c.step, c.correct2, c.epsilon, l2),
    scratch,
  };
}

/** What the kernels use of tfjs-backend-wasm's backend object. */
interface WasmBackend {
  dataIdMap: { get(dataId: object): { memoryOffset: number } | undefined };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  wasm: {
    asm: { memory: object };
    HEAPF32: Float32Array;
    _malloc(bytes: number): number;
    _free(offset: number): void;
  };
}

/** One wasm backend instance's heap as the kernels' callers use it. */
export interface BackendHeap {
  kernels: WasmKernels;
  /** Byte offset of a tensor's data. */
  offset(dataId: object): number;
  /** New float32 data of this shape, as a tensor the caller owns (in the current tf.tidy). */
  newTensor(shape: readonly number[]): tf.Tensor;
  /** The heap as floats (a fresh view: the heap's buffer changes when it grows). */
  floats(): Float32Array;
  malloc(bytes: number): number;
  free(offset: number): void;
}

/** Each backend instance's (a worker thread has its own backend and heap). */
const heaps = new WeakMap<object, BackendHeap>();

/** The heap of a wasm backend instance; null for any other backend. */
export function backendHeap(backend: tf.KernelBackend = tf.backend()): BackendHeap | null {
  const cached = heaps.get(backend);
  if (cached) return cached;
  const wasm = (backend as unknown as Partial<WasmBackend>).wasm;
  if (!wasm?.asm?.memory || typeof wasm._malloc !== "function") return null;
  const b = backend as unknown as WasmBackend;
  const malloc = (bytes: number) => wasm._malloc(bytes);
  const free = (offset: number) => wasm._free(offset);
  const heap: BackendHeap = {
    kernels: createWasmKernels({ memory: wasm.asm.memory, malloc, free }),
    offset: (dataId) => b.dataIdMap.get(dataId)!.memoryOffset,
    newTensor: (shape) => {
      const out = b.makeOutput([...shape], "float32");
      return tf.engine().makeTensorFromDataId(out.dataId, out.shape, "float32");
    },
    floats: () => wasm.HEAPF32,
    malloc,
    free,
  };
  heaps.set(backend, heap);
  return heap;
}
