/** Every registered architecture on a tiny synthetic batch: output shapes, gradients, training. */
import * as tf from "@tensorflow/tfjs";
import { beforeAll, describe, expect, it } from "vitest";
import { givenOrder } from "../../trainer/models/blocks.ts";
import { esmm, esmmTowerLogits } from "../../trainer/models/esmm.ts";
import { ple } from "../../trainer/models/ple.ts";
import { ARCHITECTURES } from "../../trainer/models/registry.ts";
import { sharedBottom } from "../../trainer/models/shared-bottom.ts";
import {
  type Architecture,
  type ArchOptions,
  DEFAULT_ARCH_OPTIONS,
  type ModelShape,
  type Params,
} from "../../trainer/models/types.ts";
import { selectBackend } from "../../trainer/train/backend.ts";
import { totalLoss } from "./total-loss.ts";

const N = 96;
const WIDTH = 10;
const SHAPE: ModelShape = {
  inputWidth: WIDTH,
  heads: [
    // Listed before its parent on purpose: architectures must follow `given`, not the order.
    { name: "purchase", type: "binary", given: "click" },
    { name: "click", type: "binary" },
    { name: "dwell", type: "regression" },
  ],
};
const OPTIONS: ArchOptions = { ...DEFAULT_ARCH_OPTIONS, bottom: [16, 8], tower: [8], expertSizes: [8, 8] };

let x: tf.Tensor2D;
let labels: Record<string, tf.Tensor2D>;

beforeAll(async () => {
  await selectBackend("cpu");
  x = tf.randomNormal([N, WIDTH], 0, 1, "float32", 11);
  const xs = x.arraySync();
  const click = xs.map((r) => (r[0]! + 0.5 * r[1]! > 0 ? 1 : 0));
  const purchase = xs.map((r, i) => (click[i] === 1 && r[2]! > 0.3 ? 1 : 0));
  labels = {
    click: tf.tensor2d(click, [N, 1]),
    purchase: tf.tensor2d(purchase, [N, 1]),
    dwell: tf.tensor2d(
      xs.map((r) => r[3]! - r[4]!),
      [N, 1],
    ),
  };
});

/**
 * The architecture's parameters. Cross layers an architecture builds itself (single's, one per
 * task) get non-zero up maps: fresh ones are zero, which leaves their down maps no gradient.
 */
function initParams(arch: Architecture): Params {
  const params = arch.init(SHAPE, OPTIONS, 5);
  for (const [name, p] of Object.entries(params))
    if (name.endsWith("/up/kernel")) p.assign(tf.randomNormal(p.shape, 0, 0.3, "float32", 6));
  return params;
}

describe.each(Object.keys(ARCHITECTURES))("architecture %s", (name) => {
  const arch = ARCHITECTURES[name]!;

  it("returns one finite [n, 1] logit per head, and every parameter gets a gradient", () => {
    const params = initParams(arch);
    const logits = arch.forward(params, x, SHAPE);
    expect(Object.keys(logits).sort()).toEqual(["click", "dwell", "purchase"]);
    for (const logit of Object.values(logits)) {
      expect(logit.shape).toEqual([N, 1]);
      expect(Array.from(logit.dataSync()).every(Number.isFinite)).toBe(true);
    }
    const { grads } = tf.variableGrads(() =>
      totalLoss(SHAPE.heads, arch.forward(params, x, SHAPE), labels, {}),
    );
    for (const [param, grad] of Object.entries(grads)) {
      expect(tf.max(tf.abs(grad)).dataSync()[0], param).toBeGreaterThan(0);
    }
    tf.dispose([...Object.values(params), ...Object.values(logits), ...Object.values(grads)]);
  });

  it("lowers the loss over a few Adam steps", () => {
    const params = initParams(arch);
    const optimizer = tf.train.adam(0.01);
    const loss = () => totalLoss(SHAPE.heads, arch.forward(params, x, SHAPE), labels, {});
    const losses: number[] = [];
    for (let step = 0; step < 30; step++) {
      const value = optimizer.minimize(loss, true, Object.values(params))!;
      losses.push(value.dataSync()[0]!);
      value.dispose();
    }
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(losses.at(-1)!).toBeLessThan(0.8 * losses[0]!);
    optimizer.dispose();
    tf.dispose(Object.values(params));
  });
});

describe("esmm", () => {
  it("outputs pCTCVR = p(click) · pCVR for a head given another, so purchase <= click", () => {
    const params = esmm.init(SHAPE, OPTIONS, 3);
    const [out, towers] = [esmm.forward(params, x, SHAPE), esmmTowerLogits(params, x, SHAPE)];
    const pClick = tf.sigmoid(out.click!).dataSync();
    const pPurchase = tf.sigmoid(out.purchase!).dataSync();
    const pCvr = tf.sigmoid(towers.purchase!).dataSync();
    expect(Array.from(pClick)).toEqual(Array.from(tf.sigmoid(towers.click!).dataSync()));
    for (let i = 0; i < N; i++) {
      expect(Math.abs(pPurchase[i]! - pClick[i]! * pCvr[i]!)).toBeLessThanOrEqual(1e-6);
      expect(pPurchase[i]!).toBeLessThanOrEqual(pClick[i]!);
    }
    tf.dispose(Object.values(params));
  });

  it("keeps the product logit finite when both probabilities are close to 1", () => {
    const params = esmm.init(SHAPE, OPTIONS, 3);
    for (const head of ["click", "purchase"]) params[`net_${head}/logit/bias`]!.assign(tf.tensor1d([40]));
    const p = tf.sigmoid(esmm.forward(params, x, SHAPE).purchase!).dataSync();
    expect(Array.from(p).every((v) => Number.isFinite(v) && v > 0.999)).toBe(true);
    tf.dispose(Object.values(params));
  });

  it("gives each task its own MLP, as in the paper (the tasks share only the embeddings)", () => {
    const params = esmm.init(SHAPE, OPTIONS, 3);
    const names = Object.keys(params);
    expect(names.every((n) => /^net_(click|purchase|dwell)\//.test(n))).toBe(true);
    for (const head of ["click", "purchase", "dwell"])
      expect(names.filter((n) => n.startsWith(`net_${head}/`) && n.endsWith("kernel"))).toHaveLength(
        OPTIONS.bottom.length + OPTIONS.tower.length + 1,
      );
    tf.dispose(Object.values(params));
  });

  it("still runs weights saved with the earlier shared bottom MLP, as the same product", () => {
    const params = sharedBottom.init(SHAPE, OPTIONS, 4);
    const towers = sharedBottom.forward(params, x, SHAPE);
    const pClick = tf.sigmoid(towers.click!).dataSync();
    const pCvr = tf.sigmoid(towers.purchase!).dataSync();
    const pPurchase = tf.sigmoid(esmm.forward(params, x, SHAPE).purchase!).dataSync();
    for (let i = 0; i < N; i++)
      expect(Math.abs(pPurchase[i]! - pClick[i]! * pCvr[i]!)).toBeLessThanOrEqual(1e-6);
    tf.dispose(Object.values(params));
  });

  it("refuses a binary head given a regression head", () => {
    const shape: ModelShape = {
      inputWidth: WIDTH,
      heads: [
        { name: "dwell", type: "regression" },
        { name: "click", type: "binary", given: "dwell" },
      ],
    };
    expect(() => esmm.init(shape, OPTIONS, 1)).toThrow(/needs two binary heads/);
  });
});

describe("ple", () => {
  it.each([1, 3])("builds %i CGC level(s), the last without a shared gate", (levels) => {
    const params = ple.init(SHAPE, { ...OPTIONS, levels }, 2);
    const names = Object.keys(params);
    expect(names.filter((n) => /^level_\d+\/shared\/expert_0\/0\/kernel$/.test(n))).toHaveLength(levels);
    expect(names.filter((n) => n.endsWith("shared/gate/kernel"))).toHaveLength(levels - 1);
    const logits = ple.forward(params, x, SHAPE);
    expect(logits.purchase!.shape).toEqual([N, 1]);
    tf.dispose([...Object.values(params), ...Object.values(logits)]);
  });
});

describe("gates", () => {
  it("mmoe: every gate starts at zero, mixing its experts evenly", () => {
    const params = ARCHITECTURES.mmoe!.init(SHAPE, OPTIONS, 3);
    const gates = Object.entries(params).filter(([n]) => /gate(_[a-z]+)?\/(kernel|bias)$/.test(n));
    expect(gates.length).toBeGreaterThanOrEqual(2 * SHAPE.heads.length);
    for (const [n, value] of gates) expect(value.abs().max().dataSync()[0], n).toBe(0);
    tf.dispose(Object.values(params));
  });
});

describe("givenOrder", () => {
  it("puts every head after the head it is given", () => {
    expect(givenOrder(SHAPE.heads).map((h) => h.name)).toEqual(["click", "purchase", "dwell"]);
  });

  it("rejects a cycle", () => {
    expect(() =>
      givenOrder([
        { name: "a", type: "binary", given: "b" },
        { name: "b", type: "binary", given: "a" },
      ]),
    ).toThrow(/cycle/);
  });
});
