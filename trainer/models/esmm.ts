/**
 * Entire Space Multi-task Model (Ma et al., SIGIR 2018, "Entire Space Multi-Task Model: An
 * Effective Approach for Estimating Post-Click Conversion Rate"). A task `given` another (spec
 * `given`, e.g. purchase given click) is modelled over every exposure as a product:
 *
 *   x [n, in] -> shared bottom MLP [n, b] -> tower_t (MLP + logit) -> z_t [n, 1] per task
 *   purchase: p(purchase) = p(click) · pCVR = σ(z_click) · σ(z_purchase)      (pCTCVR)
 *
 * So the purchase head outputs pCTCVR, the probability of a purchase per exposure, like the
 * purchase head of every other architecture, and is trained on all exposures with the purchase
 * label; pCVR = σ(z_purchase), the probability of a purchase after a click, stays internal
 * (`esmmTowerLogits`). Heads without `given` are plain shared-bottom towers; a chain (c given b
 * given a) multiplies along it. Loss and export work from logits, so the product is returned
 * as its logit, the same way in tfjs and ONNX:
 *
 *   a = log σ(z1) + log σ(z2) = -softplus(-z1) - softplus(-z2),  clamped to a <= -1e-7
 *   logit = a - log(1 - e^a)          so σ(logit) = e^a = σ(z1) · σ(z2)
 *
 * Options: `bottom` (shared MLP), `tower` (hidden layers of each tower).
 */
import * as tf from "@tensorflow/tfjs";
import type { GraphBuilder } from "../export/onnx-graph.ts";
import { countLayers, givenOrder, mlp, mlpOnnx, tower, towerOnnx } from "./blocks.ts";
import { sharedBottom } from "./shared-bottom.ts";
import type { Architecture, ModelShape, Params } from "./types.ts";

/** Upper bound of log p, so that log(1 - p) stays finite. */
const MAX_LOG_P = -1e-7;

/** The tower logits before the product: z_t [n, 1] per head (for a `given` head, logit of pCVR). */
export function esmmTowerLogits(
  params: Params,
  x: tf.Tensor2D,
  shape: ModelShape,
): Record<string, tf.Tensor2D> {
  const h = mlp(params, "bottom", x, countLayers(params, "bottom"));
  const out: Record<string, tf.Tensor2D> = {};
  for (const head of shape.heads) {
    const name = `tower_${head.name}`;
    out[head.name] = tower(params, name, h, countLayers(params, name));
  }
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

export const esmm: Architecture = {
  name: "esmm",
  init(shape, options, seed) {
    checkHeads(shape);
    // The same parameters as shared-bottom: one bottom MLP, one tower per task.
    return sharedBottom.init(shape, options, seed);
  },
  forward(params, x, shape) {
    const z = esmmTowerLogits(params, x, shape);
    const out: Record<string, tf.Tensor2D> = {};
    for (const head of givenOrder(shape.heads)) {
      out[head.name] = head.given ? productLogit(out[head.given]!, z[head.name]!) : z[head.name]!;
    }
    return out;
  },
  toOnnx(g, weights, x, shape) {
    const h = mlpOnnx(g, weights, "bottom", x, countLayers(weights, "bottom"));
    const out: Record<string, string> = {};
    for (const head of givenOrder(shape.heads)) {
      const name = `tower_${head.name}`;
      const z = towerOnnx(g, weights, name, h, countLayers(weights, name));
      out[head.name] = head.given ? productLogitOnnx(g, out[head.given]!, z) : z;
    }
    return out;
  },
};
