/**
 * Multi-gate Mixture-of-Experts (Ma et al., KDD 2018, "Modeling Task Relationships in Multi-task
 * Learning with Multi-gate Mixture-of-Experts"): E expert MLPs shared by every task; each task has
 * its own softmax gate over the experts and mixes them into the input of its tower.
 *
 *   x [n, in] -> expert_e MLP, stacked [n, E, d]
 *   gate_t = softmax(x·W_t + b_t) [n, E];  h_t = Σ_e gate_t,e · expert_e [n, d]
 *   h_t -> tower_t (MLP + logit) -> [n, 1] per task
 *
 * Options: `experts` (E), `expertSizes` (each expert's hidden layers; d is the last),
 * `tower` (hidden layers of each task tower). The number of experts is read back from the
 * parameter names (`expert_0`, `expert_1`, ...), so the saved weights describe the network.
 */
import type * as tf from "@tensorflow/tfjs";
import {
  countLayers,
  experts,
  expertsOnnx,
  gate,
  gatedMixturesOnnx,
  initExperts,
  initGate,
  initTower,
  mixture,
  tower,
  towerOnnx,
} from "./blocks.ts";
import type { Architecture, Params } from "./types.ts";

export const mmoe: Architecture = {
  name: "mmoe",
  init(shape, options, seed) {
    const params: Params = {};
    const width = initExperts(params, "expert", shape.inputWidth, options.experts, options.expertSizes, seed);
    shape.heads.forEach((head, t) => {
      initGate(params, `gate_${head.name}`, shape.inputWidth, options.experts);
      initTower(params, `tower_${head.name}`, width, options.tower, seed + 2000 + 100 * t);
    });
    return params;
  },
  forward(params, x, shape) {
    const all = experts(params, "expert", x); // E × [n, d]
    const out: Record<string, tf.Tensor2D> = {};
    for (const head of shape.heads) {
      const h = mixture(all, gate(params, `gate_${head.name}`, x)); // [n, d]
      const name = `tower_${head.name}`;
      out[head.name] = tower(params, name, h, countLayers(params, name));
    }
    return out;
  },
  toOnnx(g, weights, x, shape) {
    const all = expertsOnnx(g, weights, "expert", x); // [n, E, d]
    const gates = shape.heads.map((head) => `gate_${head.name}`);
    const mixed = gatedMixturesOnnx(g, weights, gates, x, all); // per head [n, d]
    const out: Record<string, string> = {};
    shape.heads.forEach((head, t) => {
      const name = `tower_${head.name}`;
      out[head.name] = towerOnnx(g, weights, name, mixed[t]!, countLayers(weights, name));
    });
    return out;
  },
};
