/**
 * Single-task baseline: an independent network per task (no sharing), the reference every
 * multi-task architecture has to beat.
 *
 *   x [n, in] -> net_t (bottom MLP + tower MLP + logit) -> [n, 1] per task
 */
import type * as tf from "@tensorflow/tfjs";
import { countLayers, initTower, tower, towerOnnx } from "./blocks.ts";
import type { Architecture, Params } from "./types.ts";

export const single: Architecture = {
  name: "single",
  init(shape, options, seed) {
    const params: Params = {};
    shape.heads.forEach((head, t) => {
      initTower(
        params,
        `net_${head.name}`,
        shape.inputWidth,
        [...options.bottom, ...options.tower],
        seed + 100 * t,
      );
    });
    return params;
  },
  forward(params, x, shape) {
    const out: Record<string, tf.Tensor2D> = {};
    for (const head of shape.heads) {
      const name = `net_${head.name}`;
      out[head.name] = tower(params, name, x, countLayers(params, name));
    }
    return out;
  },
  toOnnx(g, weights, x, shape) {
    const out: Record<string, string> = {};
    for (const head of shape.heads) {
      const name = `net_${head.name}`;
      out[head.name] = towerOnnx(g, weights, name, x, countLayers(weights, name));
    }
    return out;
  },
};
