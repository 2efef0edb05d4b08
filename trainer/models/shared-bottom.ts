/**
 * Shared-bottom multi-task network (Caruana, "Multitask Learning", 1997): one MLP shared by all
 * tasks, then one tower per task.
 *
 *   x [n, in] -> bottom MLP [n, bottom_last] -> tower_t (MLP + logit) -> [n, 1] per task
 */
import type * as tf from "@tensorflow/tfjs";
import { countLayers, initMlp, initTower, mlp, mlpOnnx, tower, towerOnnx } from "./blocks.ts";
import type { Architecture, Params } from "./types.ts";

export const sharedBottom: Architecture = {
  name: "shared-bottom",
  init(shape, options, seed) {
    const params: Params = {};
    const width = initMlp(params, "bottom", shape.inputWidth, options.bottom, seed);
    shape.heads.forEach((head, t) => {
      initTower(params, `tower_${head.name}`, width, options.tower, seed + 100 * (t + 1));
    });
    return params;
  },
  forward(params, x, shape) {
    const h = mlp(params, "bottom", x, countLayers(params, "bottom"));
    const out: Record<string, tf.Tensor2D> = {};
    for (const head of shape.heads) {
      const name = `tower_${head.name}`;
      out[head.name] = tower(params, name, h, countLayers(params, name));
    }
    return out;
  },
  toOnnx(g, weights, x, shape) {
    const h = mlpOnnx(g, weights, "bottom", x, countLayers(weights, "bottom"));
    const out: Record<string, string> = {};
    for (const head of shape.heads) {
      const name = `tower_${head.name}`;
      out[head.name] = towerOnnx(g, weights, name, h, countLayers(weights, name));
    }
    return out;
  },
};
