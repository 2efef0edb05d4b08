import * as tf from "@tensorflow/tfjs";
import { describe, expect, it } from "vitest";
import {
  addCrossLogits,
  countCrossLayers,
  crossNetwork,
  hasStackedCross,
  initCross,
  initCrossTowers,
  isParallelCross,
} from "../../trainer/models/cross-network.ts";
import { esmmTowerLogits } from "../../trainer/models/esmm.ts";
import { initNetwork, modelShape, networkLogits } from "../../trainer/models/network.ts";
import type { Params } from "../../trainer/models/types.ts";
import { clickBuyConfig, clickBuyData } from "./click-buy-data.ts";

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
    tf.dispose([...Object.values(params), ...Object.values(one)]);
  });

  it("rejects a rank that is not a positive integer", () => {
    expect(() => initCross({}, 3, 1, 0, 1)).toThrow(/--cross-rank/);
  });

  it("parallel layout: a fresh tower adds nothing; a trained one adds relu(x_L·W + b)·w + c", () => {
    const params: Params = {};
    initCross(params, 2, 1, 1, 1);
    initCrossTowers(params, 2, ["click", "buy"], 3, 1);
    expect(isParallelCross(params)).toBe(true);
    expect(hasStackedCross(params)).toBe(false);
    const x = tf.tensor2d([
      [1, 2],
      [-1, 0.5],
    ]);
    const logits = { click: tf.tensor2d([[0.25], [-1]]), buy: tf.tensor2d([[3], [4]]) };
    const fresh = addCrossLogits(params, crossNetwork(params, x), logits);
    expect(fresh.click!.arraySync()).toEqual([[0.25], [-1]]);
    expect(fresh.buy!.arraySync()).toEqual([[3], [4]]);

    params["cross_tower_click/0/kernel"]!.assign(tf.tensor2d([1, 0, 0, 0, 1, -1], [2, 3]));
    params["cross_tower_click/0/bias"]!.assign(tf.tensor1d([0, 0, 1]));
    params["cross_tower_click/logit/kernel"]!.assign(tf.tensor2d([1, 2, 3], [3, 1]));
    params["cross_tower_click/logit/bias"]!.assign(tf.tensor1d([0.5]));
    // Fresh cross layers are the identity, so x_L = x. Row 1: relu([1, 2, -1]) = [1, 2, 0] ->
    // 1 + 4 + 0 + 0.5; row 2: relu([-1, 0.5, 0.5]) = [0, 0.5, 0.5] -> 0 + 1 + 1.5 + 0.5.
    const out = addCrossLogits(params, crossNetwork(params, x), logits).click!.arraySync();
    expect(out[0]![0]).toBeCloseTo(0.25 + 5.5, 6);
    expect(out[1]![0]).toBeCloseTo(-1 + 3, 6);

    const stacked: Params = {};
    initCross(stacked, 2, 1, 1, 1, "net_a/");
    expect(hasStackedCross(stacked)).toBe(true);
    initCrossTowers(stacked, 2, ["a"], 3, 1, "net_a/");
    expect(hasStackedCross(stacked)).toBe(false);
    tf.dispose([...Object.values(params), ...Object.values(stacked)]);
  });

  it("parallel layout under esmm: the cross logits add to each task's own logit, so p(buy) = p(click) · pCVR", () => {
    const base = clickBuyConfig("esmm", {
      bottom: [6],
      tower: [4],
      cross: 2,
      crossRank: 3,
      crossLayout: "parallel",
    });
    const config = { ...base, heads: [base.heads[0]!, { ...base.heads[1]!, given: "click" }] };
    const params = initNetwork(config, 2);
    for (const [name, p] of Object.entries(params))
      if (/(up|logit)\/kernel$/.test(name)) p.assign(tf.randomNormal(p.shape, 0, 0.7, "float32", 3));
    const data = clickBuyData(50, 4);
    const inputs = {
      dense: tf.tensor2d(data.dense, [data.rows, config.denseSize]),
      ids: tf.tensor2d(data.ids, [data.rows, config.idSlots], "int32"),
    };
    const served = networkLogits(params, config, inputs);
    // The same network by hand: x, the towers' own logits plus the cross towers', then the product.
    const x = tf.concat(
      [inputs.dense, tf.reshape(tf.gather(params.embedding!, inputs.ids), [data.rows, -1])],
      1,
    ) as tf.Tensor2D;
    const z = addCrossLogits(params, crossNetwork(params, x), esmmTowerLogits(params, x, modelShape(config)));
    const click = tf.sigmoid(z.click!).dataSync();
    const cvr = tf.sigmoid(z.buy!).dataSync();
    const pClick = tf.sigmoid(served.click!).dataSync();
    const pBuy = tf.sigmoid(served.buy!).dataSync();
    let spread = 0;
    for (let i = 0; i < data.rows; i++) {
      expect(pClick[i]).toBeCloseTo(click[i]!, 5);
      expect(pBuy[i]).toBeCloseTo(click[i]! * cvr[i]!, 5);
      expect(pBuy[i]!).toBeLessThanOrEqual(pClick[i]! + 1e-6);
      spread = Math.max(
        spread,
        Math.abs(z.buy!.dataSync()[i]! - esmmTowerLogits(params, x, modelShape(config)).buy!.dataSync()[i]!),
      );
    }
    expect(spread).toBeGreaterThan(1e-3); // the cross towers add something
    tf.dispose(Object.values(params));
  });
});
