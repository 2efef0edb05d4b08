/**
 * A scatter-add `UnsortedSegmentSum` for the tfjs cpu and wasm backends. The gradient of an
 * embedding gather is this op. The built-in cpu kernel loops over every segment (vocabulary row)
 * for every input, O(V·N·D), which makes embedding training ~100x slower than it should be, and
 * the wasm backend has no kernel for it at all (docs/notes/tfjs-backends.md). This one is
 * O(N·D + V·D) (the output is zero-filled, then every input row is added to its segment).
 *
 * Both kernels run in JS on the backend's own storage: the cpu backend keeps a typed array per
 * tensor (`data.get(dataId).values`); the wasm backend keeps tensors on its heap, reached with
 * `typedArrayFromHeap`, and allocates outputs with `makeOutput` (tfjs-backend-wasm 4.22).
 */
import * as tf from "@tensorflow/tfjs";

type Values = Float32Array | Int32Array | Uint8Array;

interface CpuBackend {
  data: { get(dataId: object): { values: unknown } };
  makeTensorInfo(shape: number[], dtype: tf.DataType, values: tf.TypedArray): tf.TensorInfo;
}

interface WasmBackend {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): Values;
}

interface SegmentSumAttrs {
  numSegments: number;
}

/** out[ids[i], :] += x[i, :] for every i with 0 <= ids[i] < numSegments; out starts at 0. */
export function scatterAdd(
  xs: ArrayLike<number>,
  ids: ArrayLike<number>,
  inner: number,
  numSegments: number,
  out: Values,
): void {
  out.fill(0);
  for (let i = 0; i < ids.length; i++) {
    const s = ids[i]!;
    if (s < 0 || s >= numSegments) continue;
    const src = i * inner;
    const dst = s * inner;
    for (let k = 0; k < inner; k++) out[dst + k] = (out[dst + k] as number) + (xs[src + k] as number);
  }
}

function outputOf(x: tf.TensorInfo, numSegments: number): { shape: number[]; inner: number } {
  const inner = x.shape.slice(1).reduce((a, b) => a * b, 1);
  return { shape: [numSegments, ...x.shape.slice(1)], inner };
}

const KERNELS: Record<string, tf.KernelFunc> = {
  cpu: ({ inputs, backend, attrs }) => {
    const cpu = backend as unknown as CpuBackend;
    const x = inputs.x as tf.TensorInfo;
    const segmentIds = inputs.segmentIds as tf.TensorInfo;
    const { numSegments } = attrs as unknown as SegmentSumAttrs;
    const xs = cpu.data.get(x.dataId).values as Values;
    const ids = cpu.data.get(segmentIds.dataId).values as Values;
    const { shape, inner } = outputOf(x, numSegments);
    const out =
      x.dtype === "int32" ? new Int32Array(numSegments * inner) : new Float32Array(numSegments * inner);
    scatterAdd(xs, ids, inner, numSegments, out);
    return cpu.makeTensorInfo(shape, x.dtype, out);
  },
  wasm: ({ inputs, backend, attrs }) => {
    const wasm = backend as unknown as WasmBackend;
    const x = inputs.x as tf.TensorInfo;
    const segmentIds = inputs.segmentIds as tf.TensorInfo;
    const { numSegments } = attrs as unknown as SegmentSumAttrs;
    const { shape, inner } = outputOf(x, numSegments);
    // Allocate first: an allocation may grow the wasm memory, which detaches earlier heap views.
    const out = wasm.makeOutput(shape, x.dtype);
    scatterAdd(
      wasm.typedArrayFromHeap(x),
      wasm.typedArrayFromHeap(segmentIds),
      inner,
      numSegments,
      wasm.typedArrayFromHeap(out),
    );
    return out;
  },
};

/** Registers the fast kernel over (cpu) or in place of the missing one (wasm); other backends keep theirs. */
export function registerFastSegmentSum(backendName: string): void {
  const kernelFunc = KERNELS[backendName];
  if (!kernelFunc) return;
  if (tf.getKernel("UnsortedSegmentSum", backendName)) tf.unregisterKernel("UnsortedSegmentSum", backendName);
  tf.registerKernel({ kernelName: "UnsortedSegmentSum", backendName, kernelFunc });
}
