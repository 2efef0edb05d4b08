/**
 * A faster BatchMatMul for the wasm backend when an operand is transposed.
 *
 * tfjs-backend-wasm 4.22 sends a 2-D matmul to XNNPACK (SIMD, packed weights) only when neither
 * operand is transposed; `transposeA` or `transposeB` fall to its plain blocked C++ loop, ~8x
 * slower (1024x124 by 1024x128: 2.7 ms transposed first, 21 ms as is). Training hits that case
 * in every dense layer: the gradient of y = x·W is dx = dy·Wᵀ and dW = xᵀ·dy. This kernel
 * transposes the operand explicitly (the backend's own Transpose kernel, a copy) and calls the
 * built-in kernel without transposes, so XNNPACK runs it. Batched (3-D) products keep the
 * built-in path, where both routes are the slow loop.
 *
 * The last transposed first operand is kept for the next product: the kernel gradients of every
 * layer that reads the same input (an MMoE's experts and gates all read x) are xᵀ·dy with the
 * same x, so it is transposed once a step, not once a layer. A tensor's values never change while
 * its data lives, so the data's identity and shape name the copy.
 */
import * as tf from "@tensorflow/tfjs";

interface WasmBackend {
  disposeData(dataId: object): boolean;
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
  if ((!transposeA && !transposeB) || !isMatrix(a) || !isMatrix(b) || a.dtype !== "float32")
    return inner(args);
  const backend = args.backend as unknown as WasmBackend;
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

/** The last first operand transposed: its data, its shape, and the copy (freed when replaced). */
let kept: { dataId: object; shape: string; copy: tf.TensorInfo } | null = null;

function transposedFirst(
  a: tf.TensorInfo,
  swapLast: (x: tf.TensorInfo) => tf.TensorInfo,
  backend: WasmBackend,
): tf.TensorInfo {
  const shape = a.shape.join(",");
  if (kept && kept.dataId === a.dataId && kept.shape === shape) return kept.copy;
  if (kept) backend.disposeData(kept.copy.dataId);
  kept = null;
  const copy = swapLast(a);
  kept = { dataId: a.dataId, shape, copy };
  return copy;
}
