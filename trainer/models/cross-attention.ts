/**
 * Cross-task attention, after AITM (Xi et al., KDD 2021, "Modeling the Sequential Dependence
 * among Audience Multi-step Conversions with Multi-task Learning"). Towers per task over a shared
 * bottom; a task `given` another (spec `given`, e.g. purchase given click) receives the earlier
 * task's representation through a transfer layer and an attention unit before its logit:
 *
 *   x [n, in] -> shared bottom MLP [n, b] -> tower_t hidden MLP -> q_t [n, d]
 *   p = relu(z_given · W + b) [n, d]                          (transfer_t)
 *   z_t = attention over [p, q_t] [n, 2, d] -> [n, d]         (ait_t: Q/K/V [d, d], softmax
 *         of <Q u, K u>/sqrt(d) over the 2 vectors, Σ w_u · V u)
 *   z_t -> tower_t/logit -> [n, 1]
 *
 * A head without `given` uses z_t = q_t (a plain tower). In a chain (c given b given a) the
 * transferred representation is the earlier task's z, as in the paper. AITM's calibration loss
 * (p_purchase <= p_click) is not part of this model: the trainer's loss is per-head BCE.
 *
 * Options: `bottom` (shared MLP), `tower` (hidden layers of each tower; d is the last).
 */
import type * as tf from "@tensorflow/tfjs";
import {
  attention,
  attentionOnnx,
  countLayers,
  dense,
  denseOnnx,
  givenOrder,
  initAttention,
  initDense,
  initMlp,
  mlp,
  mlpOnnx,
} from "./blocks.ts";
import type { Architecture, Params } from "./types.ts";

export const crossAttention: Architecture = {
  name: "cross-attention",
  init(shape, options, seed) {
    const params: Params = {};
    const width = initMlp(params, "bottom", shape.inputWidth, options.bottom, seed);
    givenOrder(shape.heads).forEach((head, t) => {
      const s = seed + 100 * (t + 1);
      const d = initMlp(params, `tower_${head.name}`, width, options.tower, s);
      initDense(params, `tower_${head.name}/logit`, d, 1, s + 50);
      if (head.given) {
        initDense(params, `transfer_${head.name}`, d, d, s + 60);
        initAttention(params, `ait_${head.name}`, d, s + 70);
      }
    });
    return params;
  },
  forward(params, x, shape) {
    const h = mlp(params, "bottom", x, countLayers(params, "bottom"));
    const z: Record<string, tf.Tensor2D> = {};
    const out: Record<string, tf.Tensor2D> = {};
    for (const head of givenOrder(shape.heads)) {
      const name = `tower_${head.name}`;
      const q = mlp(params, name, h, countLayers(params, name)); // [n, d]
      if (head.given) {
        const p = dense(params, `transfer_${head.name}`, z[head.given]!, "relu"); // [n, d]
        z[head.name] = attention(params, `ait_${head.name}`, [p, q]); // [n, 2, d] -> [n, d]
      } else z[head.name] = q;
      out[head.name] = dense(params, `${name}/logit`, z[head.name]!, "linear");
    }
    return out;
  },
  toOnnx(g, weights, x, shape) {
    const h = mlpOnnx(g, weights, "bottom", x, countLayers(weights, "bottom"));
    const z: Record<string, string> = {};
    const out: Record<string, string> = {};
    for (const head of givenOrder(shape.heads)) {
      const name = `tower_${head.name}`;
      const q = mlpOnnx(g, weights, name, h, countLayers(weights, name)); // [n, d]
      if (head.given) {
        const p = denseOnnx(g, weights, `transfer_${head.name}`, z[head.given]!, "relu"); // [n, d]
        z[head.name] = attentionOnnx(g, weights, `ait_${head.name}`, [p, q]); // [n, 2, d] -> [n, d]
      } else z[head.name] = q;
      out[head.name] = denseOnnx(g, weights, `${name}/logit`, z[head.name]!, "linear");
    }
    return out;
  },
};
