import * as tf from "@tensorflow/tfjs";
import { describe, expect, it } from "vitest";
import { countCrossLayers, crossNetwork, initCross } from "../../trainer/models/cross-network.ts";
import type { Params } from "../../trainer/models/types.ts";

describe("cross network", () => {
  it("starts as the identity and adds x0 ⊙ (x·V·U + b) per layer", () => {
    const params: Params = {};
    initCross(params, 3, 2, 2, 1);
    expect(countCrossLayers(params)).toBe(2);
    const x0 = tf.tensor2d([
      [1, -2, 0.5],
      [0, 3, -1],
    ]);
    expect(crossNetwork(params, x0).arraySync()).toEqual(x0.arraySync());

    // One layer with V = [[1, 0], [0, 1], [0, 0]], U = [[1, 0, 0], [0, 0, 1]], b = [0, 1, 0]:
    // x·V·U + b = [x_a, 1, x_b], so x1 = x0 ⊙ [x_a, 1, x_b] + x0.
    const one: Params = {
      "cross_0/down/kernel": tf.variable(tf.tensor2d([1, 0, 0, 1, 0, 0], [3, 2])),
      "cross_0/up/kernel": tf.variable(tf.tensor2d([1, 0, 0, 0, 0, 1], [2, 3])),
      "cross_0/bias": tf.variable(tf.tensor1d([0, 1, 0])),
    };
    const out = crossNetwork(one, x0).arraySync();
    const expected = [
      [1 * 1 + 1, -2 * 1 - 2, 0.5 * -2 + 0.5],
      [0 * 0 + 0, 3 * 1 + 3, -1 * 3 - 1],
    ];
    out.forEach((row, i) => {
      row.forEach((v, j) => {
        expect(v).toBeCloseTo(expected[i]![j]!, 6);
      });
    });
  });

  it("rejects a rank that is not a positive integer", () => {
    expect(() => initCross({}, 3, 1, 0, 1)).toThrow(/--cross-rank/);
  });
});
