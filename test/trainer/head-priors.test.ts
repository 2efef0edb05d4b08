/**
 * Head priors: a fresh network of every architecture predicts each binary head's training rate
 * (esmm's `given` head through its product), not 0.5; regression heads and unlabelled rows are
 * left out.
 */
import * as tf from "@tensorflow/tfjs";
import { describe, expect, it } from "vitest";
import { embeddingPools } from "../../shared/encoder/state.ts";
import { createRng } from "../../trainer/core/rng.ts";
import { initNetwork, type NetworkConfig } from "../../trainer/models/network.ts";
import { ARCHITECTURES } from "../../trainer/models/registry.ts";
import { DEFAULT_ARCH_OPTIONS } from "../../trainer/models/types.ts";
import { initHeadPriors } from "../../trainer/train/head-priors.ts";
import { predictNetwork } from "../../trainer/train/train-network.ts";
import { syntheticEncoder } from "../fixtures/synthetic-model.ts";

const encoder = syntheticEncoder([
  { name: "user", side: "user", ids: 50 },
  { name: "price", side: "item" },
  { name: "item", side: "item", ids: 80 },
]);

const heads: NetworkConfig["heads"] = [
  { name: "click", type: "binary" },
  { name: "buy", type: "binary", given: "click" },
  { name: "spend", type: "regression" },
];

/** Labels with rates click 0.08 and buy about 0.012 (a seventh of its rows unlabelled). */
function labels(rows: number): Record<string, Float32Array> {
  const click = Float32Array.from({ length: rows }, (_, i) => (i % 25 < 2 ? 1 : 0));
  const buy = Float32Array.from({ length: rows }, (_, i) =>
    i % 100 === 0 ? 1 : i % 7 === 3 ? Number.NaN : 0,
  );
  const spend = Float32Array.from({ length: rows }, (_, i) => i % 3);
  return { click, buy, spend };
}

function rate(y: Float32Array): number {
  const kept = [...y].filter((v) => !Number.isNaN(v));
  return kept.reduce((a, v) => a + v, 0) / kept.length;
}

describe.each(Object.keys(ARCHITECTURES))("initHeadPriors: %s", (arch) => {
  it("sets one final bias per binary head, and a fresh network predicts the rates", () => {
    const config: NetworkConfig = {
      arch,
      options: DEFAULT_ARCH_OPTIONS,
      embeddingDim: 4,
      denseSize: encoder.denseSize,
      idSlots: encoder.idSlots,
      vocabSize: encoder.vocabSize,
      pools: embeddingPools(encoder),
      heads,
    };
    const params = initNetwork(config, 3);
    try {
      const y = labels(2000);
      const set = initHeadPriors(params, config, y);
      expect(set).toHaveLength(2);
      expect(set.some((n) => n.includes("spend"))).toBe(false);
      const rng = createRng(4);
      const rows = 500;
      const batch = {
        rows,
        dense: Float32Array.from({ length: rows * encoder.denseSize }, () => rng.normal()),
        ids: Int32Array.from({ length: rows * encoder.idSlots }, (_, k) =>
          k % 2 === 0 ? rng.int(52) : 52 + rng.int(82),
        ),
      };
      const out = predictNetwork(params, config, batch);
      const mean = (a: Float32Array) => a.reduce((s, v) => s + v, 0) / a.length;
      // Without priors both would sit near 0.5 (esmm's product near 0.25).
      expect(Math.abs(mean(out.click!) - rate(y.click!))).toBeLessThan(0.03);
      expect(Math.abs(mean(out.buy!) - rate(y.buy!))).toBeLessThan(0.005);
    } finally {
      tf.dispose(Object.values(params));
    }
  });
});
