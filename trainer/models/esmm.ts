/**
 * Entire Space Multi-task Model (Ma et al., SIGIR 2018, "Entire Space Multi-Task Model: An
 * Effective Approach for Estimating Post-Click Conversion Rate"). A task `given` another (spec
 * `given`, e.g. purchase given click) is modelled over every exposure as a product:
 *
 *   x [n, in] -> net_t (MLP + logit) -> z_t [n, 1] per task     (the tasks share the embeddings)
 *   purchase: p(purchase) = p(click) · pCVR = σ(z_click) · σ(z_purchase)      (pCTCVR)
 *
 * As in the paper, the tasks share only the embedding table; each has its own MLP (`bottom`
 * then `tower` layers). A bottom MLP shared by the tasks, as shared-bottom has, overfitted
 * within 1-3 epochs: against it the paper's layout raised simulator purchase AUC from
 * 0.6593 / 0.6688 / 0.6694 to 0.6768 / 0.6761 / 0.6754 (seeds 42 / 11 / 12; an MMoE under the
 * product gave 0.6732 / 0.6702 / 0.6717). Format-1 models may hold that shared layout
 * (`bottom/...`, `tower_<task>/...`; ./layout-format.ts); they still load and export.
 *
 * So the purchase head outputs pCTCVR, the probability of a purchase per exposure, like the
 * purchase head of every other architecture, and is trained on all exposures with the purchase
 * label; pCVR = σ(z_purchase), the probability of a purchase after a click, stays internal
 * (`esmmTowerLogits`). Heads without `given` are plain per-task networks; a chain (c given b
 * given a) multiplies along it. Loss and export work from logits, so the product is returned
 * as its logit, the same way in tfjs and ONNX:
 *
 *   a = log σ(z1) + log σ(z2) = -softplus(-z1) - softplus(-z2),  clamped to a <= -1e-7
 *   logit = a - log(1 - e^a)          so σ(logit) = e^a = σ(z1) · σ(z2)
 *
 * Options: `bottom` and `tower` (each task network's hidden layers, in that order).
 */
import * as tf from "@tensorflow/tfjs";
import type { GraphBuilder } from "../core/onnx-graph.ts";
import { countLayers, givenOrder, initTower, tower, towerOnnx } from "./blocks.ts";
import { esmmSharesBottom } from "./layout-format.ts";
import { sharedBottom } from "./shared-bottom.ts";
import type { Architecture, ModelShape, Params, Weights } from "./types.ts";

/** Upper bound of log p, so that log(1 - p) stays finite. */
const MAX_LOG_P = -1e-7;

const net = (head: string) => `net_${head}`;

/** The tower logits before the product: z_t [n, 1] per head (for a `given` head, logit of pCVR). */
export function esmmTowerLogits(
  params: Params,
  x: tf.Tensor2D,
  shape: ModelShape,
): Record<string, tf.Tensor2D> {
  if (esmmSharesBottom(params)) return sharedBottom.forward(params, x, shape);
  const out: Record<string, tf.Tensor2D> = {};
  for (const head of shape.heads)
    out[head.name] = tower(params, net(head.name), x, countLayers(params, net(head.name)));
  return out;
}

function towerLogitsOnnx(
  g: GraphBuilder,
  weights: Weights,
  x: string,
  shape: ModelShape,
): Record<string, string> {
  if (esmmSharesBottom(weights)) return sharedBottom.toOnnx(g, weights, x, shape);
  const out: Record<string, string> = {};
  for (const head of shape.heads)
    out[head.name] = towerOnnx(g, weights, net(head.name), x, countLayers(weights, net(head.name)));
  return out;
}

/** logit(σ(z1) · σ(z2)), [n, 1]. */
function productLogit(z1: tf.Tensor2D, z2: tf.Tensor2D): tf.Tensor2D {
  const a = tf.minimum(tf.neg(tf.add(tf.softplus(tf.neg(z1)), tf.softplus(tf.neg(z2)))), MAX_LOG_P);
  return tf.sub(a, tf.log(tf.sub(1, tf.exp(a))));
}

function productLogitOnnx(g: GraphBuilder, z1: string, z2: string): string {
  const softplusNeg = (z: string) => g.node("Softplus", [g.node("Neg", [z])]);
  const sum = g.node("Neg", [g.node("Add", [softplusNeg(z1), softplusNeg(z2)])]);
  const a = g.node("Min", [sum, g.initializer("esmm/max_log_p", [], new Float32Array([MAX_LOG_P]))]);
  const one = g.initializer("esmm/one", [], new Float32Array([1]));
  return g.node("Sub", [a, g.node("Log", [g.node("Sub", [one, g.node("Exp", [a])])])]);
}

function checkHeads(shape: ModelShape): void {
  for (const head of givenOrder(shape.heads)) {
    const parent = shape.heads.find((h) => h.name === head.given);
    if (parent && (head.type !== "binary" || parent.type !== "binary"))
      throw new Error(`esmm: "${head.name}" given "${parent.name}" needs two binary heads`);
  }
}

/** Each `given` head's logit replaced by the logit of the product along its chain (tfjs). */
function productChain(z: Record<string, tf.Tensor2D>, shape: ModelShape): Record<string, tf.Tensor2D> {
  const out: Record<string, tf.Tensor2D> = {};
  for (const head of givenOrder(shape.heads))
    out[head.name] = head.given ? productLogit(out[head.given]!, z[head.name]!) : z[head.name]!;
  return out;
}

/** productChain in the ONNX graph. */
function productChainOnnx(
  g: GraphBuilder,
  z: Record<string, string>,
  shape: ModelShape,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const head of givenOrder(shape.heads))
    out[head.name] = head.given ? productLogitOnnx(g, out[head.given]!, z[head.name]!) : z[head.name]!;
  return out;
}

export const esmm: Architecture = {
  name: "esmm",
  init(shape, options, seed) {
    checkHeads(shape);
    const params: Params = {};
    shape.heads.forEach((head, t) => {
      initTower(
        params,
        net(head.name),
        shape.inputWidth,
        [...options.bottom, ...options.tower],
        seed + 100 * t,
      );
    });
    return params;
  },
  forward(params, x, shape) {
    return productChain(esmmTowerLogits(params, x, shape), shape);
  },
  toOnnx(g, weights, x, shape) {
    return productChainOnnx(g, towerLogitsOnnx(g, weights, x, shape), shape);
  },
  taskLogits: {
    forward: esmmTowerLogits,
    toOnnx: towerLogitsOnnx,
    combine: productChain,
    combineOnnx: productChainOnnx,
  },
};
