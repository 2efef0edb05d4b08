/**
 * The wasm backend's replacement Transpose and column Sum (trainer/train/wasm-layout-kernels.ts)
 * and the matmul's transposed operands (trainer/train/wasm-matmul-kernel.ts) give the cpu
 * backend's values, on shapes that cross the 32×32 tiles, and hand every other case to the
 * built-in kernels. Identity and same-dtype Cast share their input's data.
 */
import * as tf from "@tensorflow/tfjs";
import { describe, expect, it } from "vitest";
import { selectBackend } from "../../trainer/train/backend.ts";
import { lcg } from "./lcg.ts";

function values(n: number, seed: number): Float32Array {
  const random = lcg(seed);
  return Float32Array.from({ length: n }, () => random() * 2 - 1);
}

/** f's result on the cpu backend and on wasm, as plain arrays. */
async function onBoth(
  f: () => tf.Tensor,
): Promise<{ cpu: Float32Array; wasm: Float32Array; shape: number[] }> {
  await selectBackend("cpu");
  const c = f();
  const cpu = Float32Array.from(c.dataSync() as Float32Array);
  c.dispose();
  await selectBackend("wasm");
  const w = f();
  const wasm = Float32Array.from(w.dataSync() as Float32Array);
  const shape = w.shape;
  w.dispose();
  return { cpu, wasm, shape };
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe("wasm layout kernels", () => {
  it.each([
    [1, 1],
    [37, 70],
    [64, 33],
    [1024, 124],
  ])("transposes a [%i, %i] matrix", async (rows, cols) => {
    const x = values(rows * cols, rows + cols);
    const { cpu, wasm, shape } = await onBoth(() => tf.transpose(tf.tensor2d(x, [rows, cols])));
    expect(shape).toEqual([cols, rows]);
    expect(maxDiff(wasm, cpu)).toBe(0);
  });

  it("leaves other ranks and permutations to the built-in kernel", async () => {
    const x = values(2 * 3 * 5, 9);
    const { cpu, wasm, shape } = await onBoth(() => tf.transpose(tf.tensor3d(x, [2, 3, 5]), [2, 0, 1]));
    expect(shape).toEqual([5, 2, 3]);
    expect(maxDiff(wasm, cpu)).toBe(0);
    const same = await onBoth(() => tf.transpose(tf.tensor2d(x, [5, 6]), [0, 1]));
    expect(maxDiff(same.wasm, same.cpu)).toBe(0);
  });

  it.each([
    [1, 7, false],
    [1000, 37, false],
    [65, 128, true],
  ])("sums a [%i, %i] matrix over its rows (keepDims %s)", async (rows, cols, keepDims) => {
    const x = values(rows * cols, rows * cols);
    const { cpu, wasm, shape } = await onBoth(() => tf.sum(tf.tensor2d(x, [rows, cols]), 0, keepDims));
    expect(shape).toEqual(keepDims ? [1, cols] : [cols]);
    expect(maxDiff(wasm, cpu)).toBeLessThan(1e-4);
  });

  it("sums other axes, ranks and dtypes with the built-in kernel", async () => {
    const x = values(4 * 6, 5);
    for (const f of [
      () => tf.sum(tf.tensor2d(x, [4, 6]), 1),
      () => tf.sum(tf.tensor2d(x, [4, 6]), -2),
      () => tf.sum(tf.tensor2d(x, [4, 6])),
      () => tf.sum(tf.tensor3d(x, [2, 3, 4]), 0),
      () => tf.sum(tf.tensor2d([1, 2, 3, 4], [2, 2], "int32"), 0),
    ]) {
      const { cpu, wasm } = await onBoth(f);
      expect(maxDiff(wasm, cpu)).toBeLessThan(1e-5);
    }
  });

  it("gathers table rows at 1-D and 2-D indices, and refuses an index outside the table", async () => {
    const table = values(50 * 8, 4);
    const ids = Int32Array.from({ length: 6 * 5 }, (_, i) => (i * 7) % 50);
    for (const shape of [[30], [6, 5]]) {
      const {
        cpu,
        wasm,
        shape: out,
      } = await onBoth(() => tf.gather(tf.tensor2d(table, [50, 8]), tf.tensor(ids, shape, "int32")));
      expect(out).toEqual([...shape, 8]);
      expect(maxDiff(wasm, cpu)).toBe(0);
    }
    await selectBackend("wasm");
    expect(() => tf.gather(tf.tensor2d(table, [50, 8]), tf.tensor1d([3, 50], "int32"))).toThrow(/50/);
    expect(() => tf.gather(tf.tensor2d(table, [50, 8]), tf.tensor1d([-1], "int32"))).toThrow(/-1/);
  });

  it("gathers along other axes with the built-in kernel", async () => {
    const table = values(6 * 8, 5);
    const { cpu, wasm, shape } = await onBoth(() =>
      tf.gather(tf.tensor2d(table, [6, 8]), tf.tensor1d([7, 0, 3], "int32"), 1),
    );
    expect(shape).toEqual([6, 3]);
    expect(maxDiff(wasm, cpu)).toBe(0);
  });

  it("multiplies transposed operands of widths the SIMD products leave to the backend", async () => {
    // xᵀ·dy with 5 columns (not a multiple of 4): transposed first, then the backend's product.
    const x = values(12 * 8, 1);
    const dy = values(12 * 5, 2);
    const w = values(5 * 8, 3);
    const { cpu, wasm } = await onBoth(() =>
      tf.tidy(() => {
        const a = tf.tensor2d(x, [12, 8]);
        const first = tf.matMul(a, tf.tensor2d(dy, [12, 5]), true, false);
        const second = tf.matMul(tf.tensor2d(dy, [12, 5]), tf.tensor2d(w, [5, 8]), false, false);
        const third = tf.matMul(tf.tensor2d(x, [12, 8]), tf.tensor2d(values(5 * 8, 4), [5, 8]), false, true);
        return tf.concat([first, second, third].map((t) => t.flatten()));
      }),
    );
    expect(maxDiff(wasm, cpu)).toBeLessThan(1e-5);
  });

  it("clones and same-dtype casts share data, counted, and outlive the original", async () => {
    await selectBackend("wasm");
    const backend = tf.backend() as unknown as { refCount(dataId: object): number };
    const before = tf.memory().numBytes;
    const x = tf.tensor2d(values(6, 3), [2, 3]);
    const expected = Float32Array.from(x.dataSync() as Float32Array);
    const copy = tf.clone(x);
    const cast = tf.cast(x, "float32");
    expect(backend.refCount(x.dataId)).toBe(3);
    x.dispose();
    expect(copy.dataSync()).toEqual(expected);
    copy.dispose();
    expect(cast.dataSync()).toEqual(expected);
    expect(cast.shape).toEqual([2, 3]);
    cast.dispose();
    expect(tf.memory().numBytes).toBe(before);
    // A cast to another dtype still converts, as the cpu backend does.
    const { cpu, wasm } = await onBoth(() =>
      tf.cast(tf.cast(tf.tensor1d([1.7, -2.2, 3]), "int32"), "float32"),
    );
    expect(wasm).toEqual(cpu);
  });

  it("reads an input that three layers share in place for their gradients, equal to the cpu backend's", async () => {
    const [n, k] = [40, 12];
    const x = values(n * k, 11);
    const kernels = [3, 4, 5].map((seed) => values(k * 8, seed));
    const loss = (input: tf.Tensor, ...ws: tf.Tensor[]) =>
      tf.addN(ws.map((w) => tf.sum(tf.relu(tf.matMul(input as tf.Tensor2D, w as tf.Tensor2D))))) as tf.Scalar;
    const grads = () =>
      tf.tidy(() => {
        const ws = kernels.map((w) => tf.tensor2d(w, [k, 8]));
        return tf.concat(
          tf
            .grads(loss)([tf.tensor2d(x, [n, k]), ...ws])
            .map((g) => g.flatten()),
        );
      });
    await selectBackend("cpu");
    const cpu = grads();
    await selectBackend("wasm");
    // Counts the transposes of x [n, k] (selecting a backend again would register the real kernel).
    const transpose = tf.getKernel("Transpose", "wasm")!;
    let inputTransposes = 0;
    tf.unregisterKernel("Transpose", "wasm");
    tf.registerKernel({
      ...transpose,
      kernelFunc: (args) => {
        const shape = (args.inputs.x as tf.TensorInfo).shape;
        if (shape[0] === n && shape[1] === k) inputTransposes++;
        return transpose.kernelFunc(args);
      },
    });
    try {
      const wasm = grads();
      expect(maxDiff(wasm.dataSync() as Float32Array, cpu.dataSync() as Float32Array)).toBeLessThan(1e-4);
      tf.dispose([cpu, wasm]);
    } finally {
      tf.unregisterKernel("Transpose", "wasm");
      tf.registerKernel(transpose);
    }
    // The SIMD products read xᵀ where x lies: no copy of x at all.
    expect(inputTransposes).toBe(0);
  });
});
