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
 * The last few transposed first operands are kept for the next products: the kernel gradients of
 * every layer that reads the same input (an MMoE's experts and gates all read x) are xᵀ·dy with
 * the same x, so it is transposed once a step, not once a layer. Backpropagation visits those
 * layers between others (expert 3's second layer, its first, expert 2's second, ...), so one
 * kept copy would be evicted before its next use; KEPT copies are. A tensor's values never change
 * while its data lives, so the data's identity and shape name a copy.
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
