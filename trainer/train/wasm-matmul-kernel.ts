/**
 * BatchMatMul for the wasm backend's float32 matrices.
 *
 * A product whose result has a multiple of 4 columns (every hidden layer, gate and cross layer of
 * the networks, forward and in both gradients) runs in ./wasm-kernels.ts's SIMD products, in place in
 * the backend's heap, transposed operands included: the gradient of y = x·W is dx = dy·Wᵀ and
 * dW = xᵀ·dy, and the kernels read xᵀ where x lies. Census-shaped default MMoE, one thread: a
 * step ×1.27 at batch 512 and ×1.19 at 256 with the plain build against XNNPACK (medians of 6
 * interleaved runs), and the fused build's products ×1.3 the plain one's.
 *
 * The rest (a head's one column, batched 3-D products) keep the backend: tfjs-backend-wasm 4.22
 * sends a 2-D product to XNNPACK only when neither operand is transposed, and a transposed one to
 * its plain C++ loop, ~8x slower (1024x124 by 1024x128: 2.7 ms transposed first, 21 ms as is), so
 * a transposed operand is transposed explicitly (the backend's Transpose kernel, a copy) first.
 */
import * as tf from "@tensorflow/tfjs";
import { backendHeap } from "./wasm-kernels.ts";

interface WasmBackend {
  disposeData(dataId: object): boolean;
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
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
    const heap = backendHeap(args.backend as tf.KernelBackend)!;
    const [at, bt, ct] = [a, b, out].map((x) => heap.offset(x.dataId)) as [number, number, number];
    const gemm = heap.kernels.gemm;
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
  const at = transposeA ? swapLast(a) : a;
  const bt = transposeB ? swapLast(b) : b;
  const out = inner({
    inputs: { a: at, b: bt },
    backend: args.backend,
    attrs: { ...args.attrs, transposeA: false, transposeB: false },
  });
  for (const copy of [at, bt]) if (copy !== a && copy !== b) backend.disposeData(copy.dataId);
  return out;
}

/** A matrix's rows and columns as the product reads it. */
function lastTwo(x: tf.TensorInfo, transposed: boolean): [number, number] {
  const rows = x.shape[x.shape.length - 2]!;
  const cols = x.shape[x.shape.length - 1]!;
  return transposed ? [cols, rows] : [rows, cols];
}
