/**
 * The wasm backend's SIMD matrix products (trainer/train/wasm-gemm.ts, through the BatchMatMul of
 * trainer/train/wasm-matmul-kernel.ts): every transpose combination and shape, remainders of the
 * 4 × 8 blocks included, equals a float64 reference; a product writes its own output and nothing
 * beside it; the committed binary is what the text compiles to.
 */
import { readFileSync } from "node:fs";
import * as tf from "@tensorflow/tfjs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { BINARY_FILE, binarySource, compileGemm } from "../../scripts/wasm-gemm-build.ts";
import { selectBackend } from "../../trainer/train/backend.ts";
import { createWasmGemm } from "../../trainer/train/wasm-gemm.ts";
import { lcg } from "./lcg.ts";

function values(n: number, seed: number): Float32Array {
  const random = lcg(seed);
  return Float32Array.from({ length: n }, () => random() * 2 - 1);
}

/** C = op(A)·op(B) in float64, A and B row-major as stored. */
function reference(
  a: Float32Array,
  b: Float32Array,
  m: number,
  k: number,
  n: number,
  transposeA: boolean,
  transposeB: boolean,
): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let sum = 0;
      for (let p = 0; p < k; p++) {
        const x = transposeA ? a[p * m + i]! : a[i * k + p]!;
        const y = transposeB ? b[j * k + p]! : b[p * n + j]!;
        sum += x * y;
      }
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

describe("wasm SIMD matrix products", () => {
  it("equal a float64 product for every shape and transpose", async () => {
    await selectBackend("wasm");
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 41 }),
        fc.integer({ min: 0, max: 70 }),
        fc.integer({ min: 1, max: 13 }),
        fc.constantFrom([false, false], [true, false], [false, true]),
        fc.integer({ min: 1, max: 1000 }),
        (m, k, quads, [transposeA, transposeB], seed) => {
          const n = 4 * quads;
          const a = values(m * k, seed);
          const b = values(k * n, seed + 1);
          const got = tf.tidy(() =>
            tf
              .matMul(
                tf.tensor2d(a, transposeA ? [k, m] : [m, k]),
                tf.tensor2d(b, transposeB ? [n, k] : [k, n]),
                transposeA,
                transposeB,
              )
              .dataSync(),
          );
          expect(maxError(got, reference(a, b, m, k, n, transposeA, transposeB))).toBeLessThan(1e-5);
        },
      ),
      { numRuns: 150, seed: 7 },
    );
  });

  it("multiplies the shapes of a training step, 3-D matrices included", async () => {
    await selectBackend("wasm");
    for (const [m, k, n, transposeA, transposeB] of [
      [512, 264, 64, false, false],
      [264, 512, 64, true, false],
      [512, 64, 264, false, true],
      [1024, 124, 128, false, false],
    ] as const) {
      const a = values(m * k, m);
      const b = values(k * n, n);
      const got = tf.tidy(() =>
        tf
          .matMul(
            tf.tensor3d(a, transposeA ? [1, k, m] : [1, m, k]),
            tf.tensor2d(b, transposeB ? [n, k] : [k, n]),
            transposeA,
            transposeB,
          )
          .dataSync(),
      );
      expect(maxError(got, reference(a, b, m, k, n, transposeA, transposeB))).toBeLessThan(1e-5);
    }
  });

  it("writes its output and nothing beside it", () => {
    // A heap of its own: A, B and C at known offsets with guard bands around C, the scratch from
    // a bump allocator. Every remainder path runs (m % 4 = 3, n % 8 = 4).
    const memory = new (
      globalThis as unknown as { WebAssembly: { Memory: new (d: { initial: number }) => object } }
    ).WebAssembly.Memory({ initial: 4 });
    const bytes = () => (memory as { buffer: ArrayBuffer }).buffer;
    let next = 128 * 1024;
    const gemm = createWasmGemm({
      memory,
      malloc: (size) => {
        const at = next;
        next += size;
        return at;
      },
      free: () => {},
    });
    const [m, k, n] = [7, 9, 12];
    const a = values(m * k, 1);
    const b = values(k * n, 2);
    const [aAt, bAt, guard, cAt] = [0, 4096, 1024, 16384];
    new Float32Array(bytes(), aAt, m * k).set(a);
    new Float32Array(bytes(), bAt, k * n).set(b);
    for (const [name, transposeA, transposeB] of [
      ["nn", false, false],
      ["tn", true, false],
      ["nt", false, true],
    ] as const) {
      const heap = new Float32Array(bytes());
      heap.fill(-7, (cAt - guard) / 4, (cAt + 4 * m * n + guard) / 4);
      gemm[name](aAt, bAt, cAt, m, k, n);
      const c = new Float32Array(bytes(), cAt, m * n);
      expect(maxError(c, reference(a, b, m, k, n, transposeA, transposeB))).toBeLessThan(1e-5);
      const below = new Float32Array(bytes(), cAt - guard, guard / 4);
      const above = new Float32Array(bytes(), cAt + 4 * m * n, guard / 4);
      expect([...below, ...above].every((v) => v === -7)).toBe(true);
    }
  });

  it("is the module the committed binary holds", async () => {
    expect(readFileSync(BINARY_FILE, "utf8")).toBe(binarySource(await compileGemm()));
  });
});
