/**
 * Float32 matrix products in WebAssembly SIMD that run inside tfjs-backend-wasm's own memory, for
 * the wasm backend's BatchMatMul (./wasm-matmul-kernel.ts). The module (its text and why its loops
 * are shaped as they are: scripts/wasm-gemm-wat.ts) imports the backend's WebAssembly.Memory, so a
 * product reads its operands and writes its result at the tensors' own heap offsets.
 *
 * Why not XNNPACK, which the backend already has: tfjs-backend-wasm creates an XNNPACK operator
 * and packs the weights on every call whose weight tensor it has not seen (training changes every
 * weight every step), and sends a transposed operand to a plain C++ loop, so a training step's
 * products ran at 6–15 GFLOP/s. These kernels need no packing of B and read a transposed operand
 * in place: 1.1–2.5× the backend's time on a step's shapes (bench:train, docs/benchmarks.md).
 */
import { WASM_GEMM_FUSED_BASE64, WASM_GEMM_PLAIN_BASE64 } from "./wasm-gemm-binary.ts";

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

type Exported = (...args: number[]) => void;

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
export function hasFusedGemm(): boolean {
  fusedValid ??= wasmApi.validate(Buffer.from(WASM_GEMM_FUSED_BASE64, "base64"));
  return fusedValid;
}

/**
 * The module bound to one heap (each build compiled once a process: 3 KB, synchronously).
 * `fused`: the relaxed-SIMD build; by default where the engine has it.
 */
export function createWasmGemm(heap: WasmHeap, fused = hasFusedGemm()): WasmGemm {
  let module = compiled.get(fused);
  if (!module) {
    module = new wasmApi.Module(
      Buffer.from(fused ? WASM_GEMM_FUSED_BASE64 : WASM_GEMM_PLAIN_BASE64, "base64"),
    );
    compiled.set(fused, module);
  }
  const { exports } = new wasmApi.Instance(module, { env: { memory: heap.memory } });
  const gemmNN = exports.gemm_nn!;
  const gemmTN = exports.gemm_tn!;
  const gemmNT = exports.gemm_nt!;
  let panel = 0;
  let panelBytes = 0;
  /** Scratch of at least `bytes`, 16-aligned, kept for the next call (grown, never shrunk). */
  const scratch = (bytes: number): number => {
    if (bytes > panelBytes) {
      if (panel) heap.free(panel);
      panelBytes = Math.max(bytes, 2 * panelBytes, 64 * 1024);
      panel = heap.malloc(panelBytes + 16);
      if (!panel) throw new Error(`wasm gemm: the backend could not allocate ${panelBytes} bytes of scratch`);
    }
    return Math.ceil(panel / 16) * 16;
  };
  return {
    nn: (a, b, c, m, k, n) => gemmNN(a, b, c, m, k, n),
    tn: (a, b, c, m, k, n) => gemmTN(a, b, c, m, k, n, scratch(16 * k)),
    nt: (a, b, c, m, k, n) => gemmNT(a, b, c, m, k, n, scratch(4 * k * n)),
  };
}
