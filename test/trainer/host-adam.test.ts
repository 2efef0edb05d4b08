/**
 * The dense parameters' Adam (trainer/train/host-adam.ts: in JS on the cpu backend, in the wasm
 * heap's SIMD kernel on wasm) takes tf.train.adam's steps, at a changing rate and for gradients
 * given as tensors or values; its state moves to and from the tfjs optimiser (./dense-optimizer.ts)
 * mid-run; an update never changes a tensor that shares the variable's data, and products the
 * backend caches by the weight's data see the new values.
 */
import * as tf from "@tensorflow/tfjs";
import { beforeAll, describe, expect, it } from "vitest";
import { maxAbsDiff } from "../../trainer/core/metrics.ts";
import { selectBackend } from "../../trainer/train/backend.ts";
import { denseOptimizer } from "../../trainer/train/dense-optimizer.ts";
import { HostAdam } from "../../trainer/train/host-adam.ts";
import { lcg } from "./lcg.ts";

let made = 0;

/** Two variables [5, 3] and [4] with the same start on both sides. */
function pair(seed: number): tf.Variable[] {
  const random = lcg(seed);
  return [[5, 3], [4]].map((shape) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const values = Float32Array.from({ length: n }, () => random() * 2 - 1);
    return tf.variable(tf.tensor(values, shape), true, `host-adam-${made++}`);
  });
}

function gradientsAt(step: number, vars: readonly tf.Variable[]): Float32Array[] {
  const random = lcg(100 + step);
  // Sizes from 1e-4 to 1: the second moment's square root and ε both matter.
  return vars.map((v) => Float32Array.from({ length: v.size }, () => (random() * 2 - 1) * 10 ** -(step % 5)));
}

const values = (vars: readonly tf.Variable[]) =>
  Float32Array.from(vars.flatMap((v) => Array.from(v.dataSync() as Float32Array)));

beforeAll(async () => {
  await selectBackend("wasm");
});

describe("HostAdam", () => {
  it.each([
    "wasm",
    "cpu",
  ])("takes tf.train.adam's steps at a changing rate, from tensors and from values (%s)", async (backend) => {
    await selectBackend(backend as "wasm" | "cpu");
    const mine = pair(1);
    const theirs = pair(1);
    const host = new HostAdam(0.01);
    const tfjs = denseOptimizer("adam", 0.01);
    for (let step = 0; step < 12; step++) {
      const lr = 0.01 * (1 + Math.cos(step / 3)) + 1e-4;
      host.setLearningRate(lr);
      tfjs.setLearningRate(lr);
      const g = gradientsAt(step, mine);
      host.applyGradients(
        mine.map((variable, i) => ({
          variable,
          gradient: step % 2 === 0 ? g[i]! : tf.tensor(g[i]!, variable.shape),
        })),
      );
      tf.tidy(() => {
        tfjs.optimizer.applyGradients(
          theirs.map((v, i) => ({ name: v.name, tensor: tf.tensor(g[i]!, v.shape) })),
        );
      });
    }
    const moved = maxAbsDiff(values(mine), values(pair(1)));
    expect(moved).toBeGreaterThan(1e-2);
    expect(maxAbsDiff(values(mine), values(theirs))).toBeLessThan(1e-6);
    host.dispose();
    await selectBackend("wasm");
  });

  it("leaves a tensor that shares a variable's data as it was", () => {
    const [v] = pair(4);
    const before = Float32Array.from(v!.dataSync() as Float32Array);
    // On wasm a clone shares the data (reference counted); the update must not write through it.
    const sharer = tf.clone(v!);
    const host = new HostAdam(0.1);
    host.applyGradients([{ variable: v!, gradient: new Float32Array(v!.size).fill(1) }]);
    expect(sharer.dataSync()).toEqual(before);
    expect(maxAbsDiff(v!.dataSync() as Float32Array, before)).toBeGreaterThan(0.05);
    sharer.dispose();
    host.dispose();
  });

  it("hands its state to the tfjs optimiser and takes the tfjs optimiser's back", () => {
    const mine = pair(2);
    const theirs = pair(2);
    const host = new HostAdam(0.05);
    const tfjs = denseOptimizer("adam", 0.05);
    const stepBoth = (step: number) => {
      const g = gradientsAt(step, mine);
      host.applyGradients(mine.map((variable, i) => ({ variable, gradient: g[i]! })));
      tf.tidy(() => {
        tfjs.optimizer.applyGradients(
          theirs.map((v, i) => ({ name: v.name, tensor: tf.tensor(g[i]!, v.shape) })),
        );
      });
    };
    for (let step = 0; step < 4; step++) stepBoth(step);
    const state = host.exportState();
    expect(state.slots.map((s) => s.name)).toEqual([
      `${mine[0]!.name}/m`,
      `${mine[1]!.name}/m`,
      `${mine[0]!.name}/v`,
      `${mine[1]!.name}/v`,
    ]);
    expect(state.slots.map((s) => s.shape)).toEqual([[5, 3], [4], [5, 3], [4]]);
    // The host's moments into the tfjs optimiser (their names differ: they name other variables),
    // and the tfjs optimiser's into the host: both runs go on as one.
    const theirsState = tfjs.exportState();
    expect(maxAbsDiff(Float32Array.from(state.scalars), Float32Array.from(theirsState.scalars))).toBeLessThan(
      1e-7,
    );
    tfjs.importState(state);
    host.importState(theirsState);
    for (let step = 4; step < 8; step++) stepBoth(step);
    expect(maxAbsDiff(values(mine), values(theirs))).toBeLessThan(1e-6);
  });

  it("gives a product that the backend keeps packed weights for the updated values", () => {
    // A head's one-column product goes to XNNPACK, which keeps the weights it packed by the
    // weight's data: an update must reach it as new data, not new values in the old.
    const random = lcg(5);
    const x = tf.tensor2d(
      Float32Array.from({ length: 15 }, () => random()),
      [5, 3],
    );
    const w = tf.variable(tf.tensor2d([[0.5], [-0.25], [1]]), true, `host-adam-${made++}`);
    const host = new HostAdam(0.1);
    for (let step = 0; step < 3; step++) {
      tf.matMul(x, w).dispose();
      host.applyGradients([{ variable: w, gradient: Float32Array.of(1, -1, 0.5) }]);
    }
    const [xs, ws] = [x.dataSync(), w.dataSync()];
    const expected = Float32Array.from(
      { length: 5 },
      (_, r) => xs[3 * r]! * ws[0]! + xs[3 * r + 1]! * ws[1]! + xs[3 * r + 2]! * ws[2]!,
    );
    expect(maxAbsDiff(tf.matMul(x, w).dataSync() as Float32Array, expected)).toBeLessThan(1e-6);
    tf.dispose([x, w]);
    host.dispose();
  });

  it("refuses a gradient of another size, naming the variable", () => {
    const [v] = pair(3);
    expect(() => new HostAdam(0.1).applyGradients([{ variable: v!, gradient: new Float32Array(3) }])).toThrow(
      new RegExp(`${v!.name}.*3 values`),
    );
  });
});
