/**
 * BatchMatMul for the wasm backend's float32 matrices.
 *
 * A product whose result has a multiple of 4 columns (every hidden layer, gate and cross layer of
 * the networks, forward and in both gradients) runs in ./wasm-gemm.ts's SIMD kernels, in place in
 * the backend's heap, transposed operands included: the gradient of y = x·W is dx = dy·Wᵀ and
 * dW = xᵀ·dy, and the kernels read xᵀ where x lies. Census-shaped default MMoE, one thread, batch
 * 512: the products' kernel time 32 → N ms a step (tf.profile).
 *
 * The rest (a head's one column, batched 3-D products) keep the backend: tfjs-backend-wasm 4.22
 * sends a 2-D product to XNNPACK only when neither operand is transposed, and a transposed one to
 * its plain C++ loop, ~8x slower (1024x124 by 1024x128: 2.7 ms transposed first, 21 ms as is), so
 * those are transposed explicitly (the backend's Transpose kernel, a copy) first. The last few
 * transposed first operands are kept: a head's weight gradient is xᵀ·dy with the x its task's
 * tower reads, and a tensor's values never change while its data lives, so the data's identity
 * and shape name a copy.
 */
import * as tf from "@tensorflow/tfjs";
import { createWasmGemm, type WasmGemm } from "./wasm-gemm.ts";

interface WasmBackend {
  disposeData(dataId: object): boolean;
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  dataIdMap: { get(dataId: object): { memoryOffset: number } | undefined };
  wasm: {
    asm: { memory: object };
    _malloc(bytes: number): number;
    _free(offset: number): void;
  };
}

interface MatMulAttrs {
  transposeA: boolean;
  transposeB: boolean;
}

let builtIn: tf.KernelConfig | null = null;

export function registerWasmMatMul(): void {
  const current = tf.getKernel("BatchMatMul", "wasm");
  if (!current) return;
  if (current.kernelFunc === kernelFunc) return; // already ours
  builtIn = current;
  tf.unregisterKernel("BatchMatMul", "wasm");
  tf.registerKernel({
    kernelName: "BatchMatMul",
    backendName: "wasm",
    ...(current.setupFunc ? { setupFunc: current.setupFunc } : {}),
    ...(current.disposeFunc ? { disposeFunc: current.disposeFunc } : {}),
    kernelFunc,
  });
}

function isMatrix(x: tf.TensorInfo): boolean {
  return x.shape.slice(0, -2).every((d) => d === 1);
}

/** Each backend instance's kernels (a worker thread has its own backend and heap). */
const gemms = new WeakMap<object, WasmGemm>();

function gemmOf(backend: WasmBackend): WasmGemm {
  let gemm = gemms.get(backend);
  if (!gemm) {
    const wasm = backend.wasm;
    gemm = createWasmGemm({
      memory: wasm.asm.memory,
      malloc: (bytes) => wasm._malloc(bytes),
      free: (offset) => wasm._free(offset),
    });
    gemms.set(backend, gemm);
  }
  return gemm;
}

function kernelFunc(args: Parameters<tf.KernelFunc>[0]): ReturnType<tf.KernelFunc> {
  const inner = builtIn!.kernelFunc;
  const { transposeA, transposeB } = args.attrs as unknown as MatMulAttrs;
  const a = args.inputs.a as tf.TensorInfo;
  const b = args.inputs.b as tf.TensorInfo;
  if (!isMatrix(a) || !isMatrix(b) || a.dtype !== "float32" || b.dtype !== "float32") return inner(args);
  const backend = args.backend as unknown as WasmBackend;
  const [m, k] = lastTwo(a, transposeA);
  const [kb, n] = lastTwo(b, transposeB);
  if (n % 4 === 0 && k === kb && !(transposeA && transposeB)) {
    const rank = Math.max(a.shape.length, b.shape.length);
    const out = backend.makeOutput([...Array<number>(rank - 2).fill(1), m, n], "float32");
    const at = offset(backend, a);
    const bt = offset(backend, b);
    const ct = offset(backend, out);
    const gemm = gemmOf(backend);
    if (transposeA) gemm.tn(at, bt, ct, m, k, n);
    else if (transposeB) gemm.nt(at, bt, ct, m, k, n);
    else gemm.nn(at, bt, ct, m, k, n);
    return out;
  }
  if (!transposeA && !transposeB) return inner(args);
  const transpose = tf.getKernel("Transpose", "wasm")!.kernelFunc;
  const swapLast = (x: tf.TensorInfo): tf.TensorInfo => {
    const rank = x.shape.length;
    const perm = [...Array.from({ length: rank - 2 }, (_, i) => i), rank - 1, rank - 2];
    return transpose({ inputs: { x }, backend: args.backend, attrs: { perm } }) as tf.TensorInfo;
  };
  const at = transposeA ? transposedFirst(a, swapLast, backend) : a;
  const bt = transposeB ? swapLast(b) : b;
  const out = inner({
    inputs: { a: at, b: bt },
    backend: args.backend,
    attrs: { ...args.attrs, transposeA: false, transposeB: false },
  });
  if (bt !== b) backend.disposeData(bt.dataId);
  return out;
}

/** A matrix's rows and columns as the product reads it. */
function lastTwo(x: tf.TensorInfo, transposed: boolean): [number, number] {
  const rows = x.shape[x.shape.length - 2]!;
  const cols = x.shape[x.shape.length - 1]!;
  return transposed ? [cols, rows] : [rows, cols];
}

function offset(backend: WasmBackend, x: tf.TensorInfo): number {
  return backend.dataIdMap.get(x.dataId)!.memoryOffset;
}

/** How many transposed first operands are kept (a few MB at training batch sizes). */
const KEPT = 4;

/** The last first operands transposed, most recently used last: data, shape, copy. */
const kept: { dataId: object; shape: string; copy: tf.TensorInfo }[] = [];

function transposedFirst(
  a: tf.TensorInfo,
  swapLast: (x: tf.TensorInfo) => tf.TensorInfo,
  backend: WasmBackend,
): tf.TensorInfo {
  const shape = a.shape.join(",");
  const at = kept.findIndex((k) => k.dataId === a.dataId && k.shape === shape);
  if (at >= 0) {
    const [hit] = kept.splice(at, 1);
    kept.push(hit!);
    return hit!.copy;
  }
  const copy = swapLast(a);
  kept.push({ dataId: a.dataId, shape, copy });
  // Freed when evicted: the copy is the backend's data, never a tensor the engine tracks.
  if (kept.length > KEPT) backend.disposeData(kept.shift()!.copy.dataId);
  return copy;
}
