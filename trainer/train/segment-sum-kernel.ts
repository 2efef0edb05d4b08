/**
 * A scatter-add `UnsortedSegmentSum` for the tfjs cpu backend. The gradient of an embedding
 * gather is this op; the built-in cpu kernel loops over every segment (vocabulary row) for
 * every input, O(V·N·D), which makes embedding training ~100x slower than it should be
 * (shared/notes/tfjs-backends.md). This one is O(N·D).
 */
import * as tf from "@tensorflow/tfjs";

interface CpuBackend {
  data: { get(dataId: object): { values: unknown } };
  makeTensorInfo(shape: number[], dtype: tf.DataType, values: tf.TypedArray): tf.TensorInfo;
}

export function registerFastSegmentSum(backendName: string): void {
  if (backendName !== "cpu") return;
  tf.unregisterKernel("UnsortedSegmentSum", backendName);
  tf.registerKernel({
    kernelName: "UnsortedSegmentSum",
    backendName,
    kernelFunc: ({ inputs, backend, attrs }) => {
      const cpu = backend as unknown as CpuBackend;
      const x = inputs.x as tf.TensorInfo;
      const segmentIds = inputs.segmentIds as tf.TensorInfo;
      const numSegments = (attrs as unknown as { numSegments: number }).numSegments;
      const xs = cpu.data.get(x.dataId).values as Float32Array;
      const ids = cpu.data.get(segmentIds.dataId).values as Int32Array | Float32Array;
      const inner = x.shape.slice(1).reduce((a, b) => a * b, 1);
      const out = new Float32Array(numSegments * inner);
      for (let i = 0; i < ids.length; i++) {
        const s = ids[i]!;
        if (s < 0 || s >= numSegments) continue;
        const src = i * inner;
        const dst = s * inner;
        for (let k = 0; k < inner; k++) out[dst + k] = (out[dst + k] as number) + (xs[src + k] as number);
      }
      return cpu.makeTensorInfo([numSegments, ...x.shape.slice(1)], x.dtype, out);
    },
  });
}
