/** --arch single shares nothing between tasks, embeddings included. */
import * as tf from "@tensorflow/tfjs";
import { beforeAll, describe, expect, it } from "vitest";
import {
  embeddingLayout,
  initNetwork,
  modelShape,
  type NetworkConfig,
  networkLogits,
} from "../../trainer/models/network.ts";
import type { CrossLayout } from "../../trainer/models/types.ts";
import { selectBackend } from "../../trainer/train/backend.ts";
import { trainNetwork } from "../../trainer/train/train-network.ts";
import { clickBuyConfig, clickBuyData } from "./click-buy-data.ts";

beforeAll(async () => {
  await selectBackend("cpu");
});

function singleConfig(crossLayout: CrossLayout = "stacked"): NetworkConfig {
  const base = clickBuyConfig("single", { bottom: [8], tower: [4], crossLayout });
  return { ...base, ...embeddingLayout("single", base.heads, 3) };
}

/**
 * |gradient| summed per embedding column, of one head's loss alone. The kernels that start at
 * zero (cross up maps, cross towers' logits) get values first: they would hide any path through
 * the cross layers.
 */
function embeddingGradientByColumn(config: NetworkConfig, head: string): number[] {
  const params = initNetwork(config, 3);
  for (const [name, p] of Object.entries(params))
    if (name.endsWith("/up/kernel") || /cross_tower_[^/]+\/logit\/kernel$/.test(name))
      p.assign(tf.randomNormal(p.shape, 0, 0.5, "float32", 9));
  const data = clickBuyData(64, 5);
  const inputs = {
    dense: tf.tensor2d(data.dense, [data.rows, config.denseSize]),
    ids: tf.tensor2d(data.ids, [data.rows, config.idSlots], "int32"),
  };
  const labels = tf.tensor2d(data.labels[head]!, [data.rows, 1]);
  const { grads } = tf.variableGrads(
    () => tf.losses.sigmoidCrossEntropy(labels, networkLogits(params, config, inputs)[head]!) as tf.Scalar,
    [params.embedding!],
  );
  const byColumn = Array.from(tf.sum(tf.abs(grads.embedding!), 0).dataSync());
  tf.dispose([...Object.values(params), ...Object.values(grads), inputs.dense, inputs.ids, labels]);
  return byColumn;
}

describe("single-task networks", () => {
  it("give each head its own copy of every embedding", () => {
    const config = singleConfig();
    expect(config.embeddingDim).toBe(6);
    expect(config.embeddingCopies).toBe(2);
    expect(embeddingLayout("mmoe", config.heads, 3)).toEqual({ embeddingDim: 3 });
    // x = 2 dense columns, then the one id slot's 6 columns: click's 3, then buy's 3.
    expect(modelShape(config).columnOwner).toEqual([-1, -1, 0, 0, 0, 1, 1, 1]);
  });

  it.each([
    "stacked",
    "parallel",
  ] as const)("send a head's gradient only into its own embedding copy, through their own %s cross layers", (layout) => {
    const config = singleConfig(layout);
    expect(config.options.cross).toBeGreaterThan(0);
    const fresh = initNetwork(config, 3);
    const names = Object.keys(fresh);
    tf.dispose(Object.values(fresh));
    expect(names).toContain("net_click/cross_0/up/kernel");
    expect(names).toContain("net_buy/cross_0/up/kernel");
    expect(names).not.toContain("cross_0/up/kernel");
    if (layout === "parallel") expect(names).toContain("net_buy/cross_tower_buy/0/kernel");
    const click = embeddingGradientByColumn(config, "click");
    const buy = embeddingGradientByColumn(config, "buy");
    expect(click.slice(3)).toEqual([0, 0, 0]);
    expect(Math.min(...click.slice(0, 3))).toBeGreaterThan(0);
    expect(buy.slice(0, 3)).toEqual([0, 0, 0]);
    expect(Math.min(...buy.slice(3))).toBeGreaterThan(0);
  });

  it.each([
    "stacked",
    "parallel",
  ] as const)("keep the first and cross kernels' rows for the other heads' copies at zero through training (%s)", (layout) => {
    const config = singleConfig(layout);
    const options = { epochs: 2, batchSize: 32, learningRate: 0.01, seed: 4, patience: 5, taskWeights: {} };
    const result = trainNetwork(config, clickBuyData(400, 1), clickBuyData(100, 2), { ...options, l2: 1e-3 });
    const owner = modelShape(config).columnOwner!;
    config.heads.forEach((head, t) => {
      const kernels = [`net_${head.name}/0/kernel`, `net_${head.name}/cross_0/down/kernel`];
      if (layout === "parallel") kernels.push(`net_${head.name}/cross_tower_${head.name}/0/kernel`);
      for (const name of kernels) {
        const rows = result.params[name]!.arraySync() as number[][];
        const foreign = rows.filter((_, r) => owner[r] !== -1 && owner[r] !== t).flat();
        const own = rows.filter((_, r) => owner[r] === t).flat();
        expect(
          foreign.every((v) => v === 0),
          name,
        ).toBe(true);
        expect(
          own.some((v) => v !== 0),
          name,
        ).toBe(true);
      }
    });
    tf.dispose(Object.values(result.params));
  });
});
