/**
 * Progressive Layered Extraction (Tang et al., RecSys 2020, "Progressive Layered Extraction (PLE):
 * A Novel Multi-Task Learning (MTL) Model for Personalized Recommendations"): a stack of
 * Customized Gate Control (CGC) levels. Each level has shared experts and experts of each task;
 * task t's gate mixes its own experts and the shared ones; below the last level a shared gate
 * mixes every expert of the level into the input of the next level's shared experts.
 *
 *   level l: shared experts on s  -> [n, Es, d];  task-t experts on h_t -> [n, Et, d]
 *            h_t' = Σ softmax(gate_t(h_t)) · concat(task-t, shared)    [n, Et+Es, d] -> [n, d]
 *            s'   = Σ softmax(gate_s(s))   · concat(all tasks, shared) [n, T·Et+Es, d] -> [n, d]
 *   (level 0: s = h_t = x [n, in]) ... then h_t -> tower_t (MLP + logit) -> [n, 1]
 *
 * Options: `levels` (CGC levels, 1 = CGC alone), `sharedExperts` (Es), `taskExperts` (Et),
 * `expertSizes` (each expert's hidden layers; d is the last), `tower`. Levels and expert counts
 * are read back from the parameter names `level_<l>/shared/expert_<e>`, `level_<l>/task_<t>/...`.
 */
import type * as tf from "@tensorflow/tfjs";
import {
  countLayers,
  experts,
  expertsOnnx,
  gate,
  gateOnnx,
  initDense,
  initExperts,
  initTower,
  mixture,
  mixtureOnnx,
  tower,
  towerOnnx,
} from "./blocks.ts";
import type { Architecture, Params } from "./types.ts";

const level = (l: number) => `level_${l}`;

function countLevels(params: Readonly<Record<string, unknown>>): number {
  let n = 0;
  while (`${level(n)}/shared/expert_0/0/kernel` in params) n++;
  return n;
}

export const ple: Architecture = {
  name: "ple",
  init(shape, options, seed) {
    if (options.levels < 1) throw new Error("ple: levels must be at least 1");
    const params: Params = {};
    const { sharedExperts: es, taskExperts: et, expertSizes: sizes } = options;
    let width = shape.inputWidth;
    for (let l = 0; l < options.levels; l++) {
      const base = seed + 1000 * l;
      const out = initExperts(params, `${level(l)}/shared/expert`, width, es, sizes, base);
      shape.heads.forEach((head, t) => {
        const task = `${level(l)}/task_${head.name}`;
        initExperts(params, `${task}/expert`, width, et, sizes, base + 100 * (t + 1));
        initDense(params, `${task}/gate`, width, et + es, base + 100 * (t + 1) + 99);
      });
      if (l < options.levels - 1) {
        initDense(params, `${level(l)}/shared/gate`, width, shape.heads.length * et + es, base + 99);
      }
      width = out;
    }
    shape.heads.forEach((head, t) => {
      initTower(params, `tower_${head.name}`, width, options.tower, seed + 100_000 + 100 * t);
    });
    return params;
  },
  forward(params, x, shape) {
    let shared = x;
    let task: Record<string, tf.Tensor2D> = Object.fromEntries(shape.heads.map((h) => [h.name, x]));
    for (let l = 0; l < countLevels(params); l++) {
      const sharedOut = experts(params, `${level(l)}/shared/expert`, shared); // Es × [n, d]
      const own = shape.heads.map((h) => experts(params, `${level(l)}/task_${h.name}/expert`, task[h.name]!));
      const next: Record<string, tf.Tensor2D> = {};
      shape.heads.forEach((h, t) => {
        const w = gate(params, `${level(l)}/task_${h.name}/gate`, task[h.name]!); // [n, Et+Es]
        next[h.name] = mixture([...own[t]!, ...sharedOut], w);
      });
      if (`${level(l)}/shared/gate/kernel` in params) {
        const w = gate(params, `${level(l)}/shared/gate`, shared); // [n, T·Et+Es]
        shared = mixture([...own.flat(), ...sharedOut], w);
      }
      task = next;
    }
    const out: Record<string, tf.Tensor2D> = {};
    for (const head of shape.heads) {
      const name = `tower_${head.name}`;
      out[head.name] = tower(params, name, task[head.name]!, countLayers(params, name));
    }
    return out;
  },
  toOnnx(g, weights, x, shape) {
    let shared = x;
    let task: Record<string, string> = Object.fromEntries(shape.heads.map((h) => [h.name, x]));
    for (let l = 0; l < countLevels(weights); l++) {
      const sharedOut = expertsOnnx(g, weights, `${level(l)}/shared/expert`, shared); // [n, Es, d]
      const own = shape.heads.map((h) =>
        expertsOnnx(g, weights, `${level(l)}/task_${h.name}/expert`, task[h.name]!),
      );
      const next: Record<string, string> = {};
      shape.heads.forEach((h, t) => {
        const mixed = g.node("Concat", [own[t]!, sharedOut], { axis: 1 }); // [n, Et+Es, d]
        const w = gateOnnx(g, weights, `${level(l)}/task_${h.name}/gate`, task[h.name]!);
        next[h.name] = mixtureOnnx(g, mixed, w);
      });
      if (`${level(l)}/shared/gate/kernel` in weights) {
        const all = g.node("Concat", [...own, sharedOut], { axis: 1 }); // [n, T·Et+Es, d]
        shared = mixtureOnnx(g, all, gateOnnx(g, weights, `${level(l)}/shared/gate`, shared));
      }
      task = next;
    }
    const out: Record<string, string> = {};
    for (const head of shape.heads) {
      const name = `tower_${head.name}`;
      out[head.name] = towerOnnx(g, weights, name, task[head.name]!, countLayers(weights, name));
    }
    return out;
  },
};
