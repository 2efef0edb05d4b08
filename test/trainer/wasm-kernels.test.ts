/**
 * The wasm backend's SIMD matrix products (trainer/train/wasm-kernels.ts), both builds: every
 * transpose combination and shape, remainders of the 4 × 8 blocks included, equals a float64
 * reference; a product writes its own output and nothing beside it; through the backend's
 * BatchMatMul (trainer/train/wasm-matmul-kernel.ts) a training step's shapes and 3-D matrices
 * give the same; the committed binary is what the text compiles to. (The Adam kernel's tests are
 * test/trainer/host-adam.test.ts's.)
 */
import { readFileSync } from "node:fs";
import * as tf from "@tensorflow/tfjs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { BINARY_FILE, currentSource } from "../../scripts/wasm-kernels-build.ts";
import { selectBackend } from "../../trainer/train/backend.ts";
import { createWasmKernels, hasFusedKernels, type WasmGemm } from "../../trainer/train/wasm-kernels.ts";
import { lcg } from "./lcg.ts";

function values(n: number, seed: number): Float32Array {
  const random = lcg(seed);
  return Float32Array.from({ length: n }, () => random() * 2 - 1);
}

type Mode = "nn" | "tn" | "nt";

/** C = op(A)·op(B) in float64, A and B row-major as stored. */
function reference(
  a: Float32Array,
  b: Float32Array,
  m: number,
  k: number,
  n: number,
  mode: Mode,
): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let sum = 0;
      for (let p = 0; p < k; p++)
        sum +=
          (mode === "tn" ? a[p * m + i]! : a[i * k + p]!) * (mode === "nt" ? b[j * k + p]! : b[p * n + j]!);
      c[i * n + j] = sum;
    }
  return c;
}

function maxError(actual: ArrayLike<number>, expected: Float64Array): number {
  expect(actual.length).toBe(expected.length);
  let worst = 0;
  for (let i = 0; i < expected.length; i++)
    worst = Math.max(worst, Math.abs(actual[i]! - expected[i]!) / (1 + Math.abs(expected[i]!)));
  return worst;
}

/** A heap of its own (1 MB) for one build, with a bump allocator for the scratch. */
function privateHeap(fused: boolean): { gemm: WasmGemm; floats: () => Float32Array } {
  const wasm = (globalThis as unknown as { WebAssembly: { Memory: new (d: { initial: number }) => object } })
    .WebAssembly;
  const memory = new wasm.Memory({ initial: 16 }) as { buffer: ArrayBuffer };
  let next = 768 * 1024;
  const { gemm } = createWasmKernels(
    {
      memory,
      malloc: (size) => {
        const at = next;
        next += size;
        return at;
      },
      free: () => {},
    },
    fused,
  );
  return { gemm, floats: () => new Float32Array(memory.buffer) };
}

const A_AT = 0;
const B_AT = 256 * 1024;
const C_AT = 512 * 1024;
const GUARD = 1024;

/** Runs one product on the private heap, C with GUARD bytes of sentinels on each side. */
function product(
  heap: ReturnType<typeof privateHeap>,
  mode: Mode,
  a: Float32Array,
  b: Float32Array,
  m: number,
  k: number,
  n: number,
) {
  const floats = heap.floats();
  floats.set(a, A_AT / 4);
  floats.set(b, B_AT / 4);
  floats.fill(-7, (C_AT - GUARD) / 4, (C_AT + 4 * m * n + GUARD) / 4);
  heap.gemm[mode](A_AT, B_AT, C_AT, m, k, n);
  const around = [
    ...floats.subarray((C_AT - GUARD) / 4, C_AT / 4),
    ...floats.subarray((C_AT + 4 * m * n) / 4, (C_AT + 4 * m * n + GUARD) / 4),
  ];
  return { c: floats.slice(C_AT / 4, C_AT / 4 + m * n), untouched: around.every((v) => v === -7) };
}

describe("wasm SIMD matrix products", () => {
  it("this engine runs the fused build", () => {
    // Node 22's V8 ships relaxed SIMD; were it gone, training would silently lose its FMA speed.
    expect(hasFusedKernels()).toBe(true);
  });

  it.each([
    true,
    false,
  ])("equal a float64 product for every shape and transpose, writing only C (fused: %s)", (fused) => {
    const heap = privateHeap(fused);
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 41 }),
        fc.integer({ min: 0, max: 70 }),
        fc.integer({ min: 1, max: 13 }),
        fc.constantFrom<Mode>("nn", "tn", "nt"),
        fc.integer({ min: 1, max: 1000 }),
        (m, k, quads, mode, seed) => {
          const n = 4 * quads;
          const a = values(m * k, seed);
          const b = values(k * n, seed + 1);
          const { c, untouched } = product(heap, mode, a, b, m, k, n);
          expect(maxError(c, reference(a, b, m, k, n, mode))).toBeLessThan(1e-5);
          expect(untouched).toBe(true);
        },
      ),
      { numRuns: 200, seed: 7 },
    );
  });

  it("BatchMatMul runs a training step's shapes, 3-D matrices and other widths", async () => {
    await selectBackend("wasm");
    for (const [m, k, n, mode] of [
      [512, 264, 64, "nn"],
      [264, 512, 64, "tn"],
      [512, 64, 264, "nt"],
      [1024, 124, 128, "nn"],
      [33, 20, 1, "nn"], // a head's one column: the backend's own kernel
      [20, 33, 3, "tn"],
      [33, 20, 5, "nt"],
    ] as const) {
      const a = values(m * k, m);
      const b = values(k * n, n);
      const got = tf.tidy(() =>
        tf
          .matMul(
            tf.tensor3d(a, mode === "tn" ? [1, k, m] : [1, m, k]),
            tf.tensor2d(b, mode === "nt" ? [n, k] : [k, n]),
            mode === "tn",
            mode === "nt",
          )
          .dataSync(),
      );
      expect(maxError(got, reference(a, b, m, k, n, mode))).toBeLessThan(1e-5);
    }
  });

  it("keeps multiplying in place after the backend's heap grows", async () => {
    await selectBackend("wasm");
    const [m, k, n] = [33, 20, 12];
    const a = values(m * k, 5);
    const b = values(k * n, 6);
    const heap = (tf.backend() as unknown as { wasm: { HEAPF32: Float32Array } }).wasm;
    const before = heap.HEAPF32.length;
    const product = () =>
      tf.tidy(() => tf.matMul(tf.tensor2d(a, [m, k]), tf.tensor2d(b, [k, n])).dataSync() as Float32Array);
    product();
    // A tensor larger than the heap: the backend grows its memory (a new buffer, the same Memory).
    const big = tf.zeros([before + 1024]);
    expect(heap.HEAPF32.length).toBeGreaterThan(before);
    expect(maxError(product(), reference(a, b, m, k, n, "nn"))).toBeLessThan(1e-5);
    big.dispose();
  });

  it("is the module the committed binary holds", async () => {
    expect(readFileSync(BINARY_FILE, "utf8")).toBe(await currentSource());
  });
});
