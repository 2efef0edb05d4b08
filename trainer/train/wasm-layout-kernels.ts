/**
 * Faster Transpose and column Sum for the wasm backend's 2-D float tensors, the two layout
 * kernels every dense layer's gradient runs, and copy-free Identity and Cast.
 *
 * tfjs-backend-wasm 4.22 transposes with a plain strided C++ loop (~8 ns an element: a
 * [1024, 124] batch in ~1 ms), and its Sum first transposes the reduced axis to the end, so a
 * bias gradient (the sum over the batch of a [1024, 128] tensor) cost ~1.2 ms, more than a tenth
 * of its layer's matmul. Training runs the Sum for every dense layer of every step (each bias
 * gradient is a Sum over axis 0), and the transpose for the products the SIMD kernels leave to
 * the backend (./wasm-matmul-kernel.ts: a head's one-column weight gradient). Here a transpose
 * walks the heap in 32×32 tiles (both sides stay in cache) and the column sum adds whole rows
 * into one accumulator row, with no transpose at all.
 *
 * The embedding lookup is a GatherV2 of table rows: the built-in kernel checks each index through
 * a closure and an assert call before a strided wasm loop (~12 ms a step for a batch of 1024
 * rows x 40 ids of 8 floats); here one loop checks each index and copies its row. Other ranks,
 * axes and dtypes keep the built-in kernels.
 *
 * Identity (and Cast to the same dtype) share the input's data, raising its reference count as
 * the backend's own Reshape does, where the built-in kernels copy it. Autodiff clones every input
 * it saves for the backward pass, so each step copied every layer's input (~275 copies a step of
 * the default MMoE). A tensor's values never change while its data lives (./host-adam.ts gives
 * an updated variable new data), so shared data is safe. Census-shaped default MMoE, one thread,
 * batch 512, with XNNPACK's products of the time: 10,900 → 13,400 samples/s (medians of 5 runs,
 * interleaved).
 */
import * as tf from "@tensorflow/tfjs";

interface WasmBackend {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): tf.TypedArray;
  incRef(dataId: object): void;
}

const TILE = 32;

const builtIn = new Map<string, tf.KernelConfig>();

/** Registers the kernels over the wasm backend's own (once; a second call does nothing). */
export function registerWasmLayoutKernels(): void {
  override("Identity", identityKernel);
  override("Cast", castKernel);
  override("Transpose", transposeKernel);
  override("Sum", sumKernel);
  override("GatherV2", gatherKernel);
}

function override(kernelName: string, kernelFunc: tf.KernelFunc): void {
  const current = tf.getKernel(kernelName, "wasm");
  if (!current || current.kernelFunc === kernelFunc) return;
  builtIn.set(kernelName, current);
  tf.unregisterKernel(kernelName, "wasm");
  tf.registerKernel({
    kernelName,
    backendName: "wasm",
    ...(current.setupFunc ? { setupFunc: current.setupFunc } : {}),
    ...(current.disposeFunc ? { disposeFunc: current.disposeFunc } : {}),
    kernelFunc,
  });
}

function inner(kernelName: string, args: Parameters<tf.KernelFunc>[0]): ReturnType<tf.KernelFunc> {
  return builtIn.get(kernelName)!.kernelFunc(args);
}

/** The same data under a new tensor (its reference count raised, as the backend's Reshape does). */
function identityKernel(args: Parameters<tf.KernelFunc>[0]): ReturnType<tf.KernelFunc> {
  const x = args.inputs.x as tf.TensorInfo;
  if (x.dtype === "string") return inner("Identity", args);
  (args.backend as unknown as WasmBackend).incRef(x.dataId);
  return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
}

/** A cast to x's own dtype shares x (the gradients cast to float32 what already is); else built in. */
function castKernel(args: Parameters<tf.KernelFunc>[0]): ReturnType<tf.KernelFunc> {
  const x = args.inputs.x as tf.TensorInfo;
  const { dtype } = args.attrs as unknown as { dtype: tf.DataType };
  return dtype === x.dtype ? identityKernel(args) : inner("Cast", args);
}

/** x [rows, cols] -> [cols, rows]; the identity permutation shares x; else the built-in kernel. */
function transposeKernel(args: Parameters<tf.KernelFunc>[0]): ReturnType<tf.KernelFunc> {
  const x = args.inputs.x as tf.TensorInfo;
  const { perm } = args.attrs as unknown as { perm: number[] };
  if (perm.every((p, i) => p === i)) return identityKernel(args);
  if (x.dtype !== "float32" || x.shape.length !== 2 || perm[0] !== 1 || perm[1] !== 0)
    return inner("Transpose", args);
  const [rows, cols] = x.shape as [number, number];
  return fromHeap(args, x, [cols, rows], (src, dst) => transposeInto(src, dst, rows, cols));
}

/** A new float32 tensor of `shape`, written by `fill` from x's values, both views of the heap. */
function fromHeap(
  args: Parameters<tf.KernelFunc>[0],
  x: tf.TensorInfo,
  shape: number[],
  fill: (src: Float32Array, dst: Float32Array, backend: WasmBackend) => void,
): tf.TensorInfo {
  const backend = args.backend as unknown as WasmBackend;
  const out = backend.makeOutput(shape, "float32");
  fill(
    backend.typedArrayFromHeap(x) as Float32Array,
    backend.typedArrayFromHeap(out) as Float32Array,
    backend,
  );
  return out;
}

/** src [rows, cols] row-major into dst [cols, rows], tile by tile. */
export function transposeInto(src: Float32Array, dst: Float32Array, rows: number, cols: number): void {
  for (let i0 = 0; i0 < rows; i0 += TILE) {
    const i1 = Math.min(i0 + TILE, rows);
    for (let j0 = 0; j0 < cols; j0 += TILE) {
      const j1 = Math.min(j0 + TILE, cols);
      for (let i = i0; i < i1; i++) {
        const from = i * cols;
        for (let j = j0; j < j1; j++) dst[j * rows + i] = src[from + j]!;
      }
    }
  }
}

/** Sum over axis 0 of x [rows, cols] -> [cols] (or [1, cols] with keepDims); else built in. */
function sumKernel(args: Parameters<tf.KernelFunc>[0]): ReturnType<tf.KernelFunc> {
  const x = args.inputs.x as tf.TensorInfo;
  const { axis, keepDims } = args.attrs as unknown as { axis: number | number[]; keepDims: boolean };
  const axes = (Array.isArray(axis) ? axis : [axis]).map((a) => (a < 0 ? a + x.shape.length : a));
  if (x.dtype !== "float32" || x.shape.length !== 2 || axes.length !== 1 || axes[0] !== 0)
    return inner("Sum", args);
  const [rows, cols] = x.shape as [number, number];
  return fromHeap(args, x, keepDims ? [1, cols] : [cols], (src, dst) => sumRowsInto(src, dst, rows, cols));
}

/** dst[j] = Σ_i src[i, j] for src [rows, cols] row-major, in float64 per column. */
export function sumRowsInto(src: Float32Array, dst: Float32Array, rows: number, cols: number): void {
  const acc = new Float64Array(cols);
  for (let i = 0; i < rows; i++) {
    const from = i * cols;
    for (let j = 0; j < cols; j++) acc[j] = acc[j]! + src[from + j]!;
  }
  dst.set(acc);
}

/** Rows of a table x [V, E] at int32 indices of any shape -> [...indices.shape, E]; else built in. */
function gatherKernel(args: Parameters<tf.KernelFunc>[0]): ReturnType<tf.KernelFunc> {
  const x = args.inputs.x as tf.TensorInfo;
  const indices = args.inputs.indices as tf.TensorInfo;
  const { axis, batchDims } = args.attrs as unknown as { axis: number; batchDims: number };
  if (
    x.dtype !== "float32" ||
    x.shape.length !== 2 ||
    indices.dtype !== "int32" ||
    (axis !== 0 && axis !== -2) ||
    (batchDims ?? 0) !== 0
  )
    return inner("GatherV2", args);
  const [rows, width] = x.shape as [number, number];
  return fromHeap(args, x, [...indices.shape, width], (table, dst, backend) =>
    gatherRowsInto(table, backend.typedArrayFromHeap(indices) as Int32Array, dst, rows, width),
  );
}

/** dst[i, :] = table[ids[i], :] for table [rows, width]; throws on an index outside [0, rows). */
export function gatherRowsInto(
  table: Float32Array,
  ids: Int32Array,
  dst: Float32Array,
  rows: number,
  width: number,
): void {
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    if (!(id >= 0 && id < rows))
      throw new Error(`GatherV2: the index value ${id} is not in [0, ${rows - 1}]`);
    const from = id * width;
    const to = i * width;
    for (let e = 0; e < width; e++) dst[to + e] = table[from + e]!;
  }
}
