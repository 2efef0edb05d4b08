/** Warm start: an earlier model's weights carried into tonight's network by name and by value. */
import * as tf from "@tensorflow/tfjs";
import { beforeAll, describe, expect, it } from "vitest";
import type { EncoderState } from "../../shared/encoder/state.ts";
import type { TrainedModel } from "../../trainer/artifact/trained-model.ts";
import { initNetwork, type NetworkConfig } from "../../trainer/models/network.ts";
import { type CrossLayout, DEFAULT_ARCH_OPTIONS, type Weights } from "../../trainer/models/types.ts";
import { selectBackend } from "../../trainer/train/backend.ts";
import { carriedRows, warmStart } from "../../trainer/train/warm-start.ts";

beforeAll(async () => {
  await selectBackend("cpu");
});

const DIM = 2;

/** Feature "c" (vocabulary) then numeric "x" with 3 buckets, then hashed "h" with 2 buckets. */
function encoder(vocab: string[], xBuckets: number[]): EncoderState {
  const cSize = 2 + vocab.length;
  const xSize = 2 + xBuckets.length;
  return {
    version: 1,
    trim: true,
    missing: [""],
    denseSize: 2,
    idSlots: 3,
    vocabSize: cSize + xSize + 4,
    features: [
      { kind: "categorical", name: "c", side: "item", slot: 0, offset: 0, size: cSize, vocab },
      {
        kind: "numeric",
        name: "x",
        side: "item",
        mean: 0,
        std: 1,
        clip: 8,
        denseOffset: 0,
        buckets: { slot: 1, offset: cSize, size: xSize, boundaries: xBuckets },
      },
      {
        kind: "categorical",
        name: "h",
        side: "item",
        slot: 2,
        offset: cSize + xSize,
        size: 4,
        hashBuckets: 2,
      },
    ],
  };
}

function config(state: EncoderState, bottom: number[], crossLayout: CrossLayout = "stacked"): NetworkConfig {
  return {
    arch: "shared-bottom",
    options: { ...DEFAULT_ARCH_OPTIONS, bottom, tower: [4], crossLayout },
    embeddingDim: DIM,
    denseSize: state.denseSize,
    idSlots: state.idSlots,
    vocabSize: state.vocabSize,
    heads: [{ name: "click", type: "binary" }],
  };
}

/** An earlier model whose embedding row r holds [r + 100, r + 100.5] and every other weight is 7. */
function previousModel(state: EncoderState, cfg: NetworkConfig): TrainedModel {
  const params = initNetwork(cfg, 1);
  const weights: Weights = {};
  for (const [name, v] of Object.entries(params)) {
    const values =
      name === "embedding"
        ? Float32Array.from({ length: v.size }, (_, i) => Math.floor(i / DIM) + 100 + (i % DIM) * 0.5)
        : new Float32Array(v.size).fill(7);
    weights[name] = { shape: v.shape, values };
  }
  tf.dispose(Object.values(params));
  return { config: cfg, encoder: state, weights } as unknown as TrainedModel;
}

describe("warmStart", () => {
  it("moves each categorical value's row to where tonight's vocabulary puts it, and copies same-size blocks", () => {
    const before = encoder(["a", "b", "c"], [1, 2]); // c rows 0-4, x rows 5-8, h rows 9-12
    const now = encoder(["c", "d", "a"], [1.1, 2.2]); // c rows 0-4, x rows 5-8, h rows 9-12
    const previous = previousModel(before, config(before, [8]));
    const cfg = config(now, [8]);
    const params = initNetwork(cfg, 2);
    const fresh = Float32Array.from(params.embedding!.dataSync() as Float32Array);
    const report = warmStart(params, cfg, now, previous);
    const table = params.embedding!.dataSync();
    const row = (r: number) => [table[r * DIM], table[r * DIM + 1]];
    expect(row(0)).toEqual([100, 100.5]); // missing
    expect(row(1)).toEqual([101, 101.5]); // out of vocabulary
    expect(row(2)).toEqual([104, 104.5]); // "c": old row 4
    expect(row(3)).toEqual([fresh[6], fresh[7]]); // "d": new, keeps its fresh initialisation
    expect(row(4)).toEqual([102, 102.5]); // "a": old row 2
    for (let r = 5; r <= 12; r++) expect(row(r)).toEqual([100 + r, 100.5 + r]); // buckets, hashed
    expect(report.embeddingRows).toEqual({ copied: 12, total: 13 });
    // The rows it filled, which training tonight may not read and which keep what they learnt.
    // Reserved rows (c's missing and unseen, x's missing bucket, h's missing and unseen) are not,
    // nor hash buckets the earlier training may not have read (h has no counts to say).
    expect(Array.from(carriedRows(cfg, now, previous))).toEqual([0, 0, 1, 0, 1, 0, 1, 1, 1, 0, 0, 0, 0]);
    // With its counts: bucket 0 had training rows, bucket 1 none (its row never trained).
    const counted = {
      ...before,
      features: before.features.map((f) =>
        f.name === "h" ? { ...f, frequency: { denseOffset: 1, counts: [3, 0], mean: 0, std: 1 } } : f,
      ),
    } as EncoderState;
    expect(Array.from(carriedRows(cfg, now, { ...previous, encoder: counted }))).toEqual([
      0, 0, 1, 0, 1, 0, 1, 1, 1, 0, 0, 1, 0,
    ]);
    expect(report.fresh).toEqual([]);
    expect(params["bottom/0/kernel"]!.dataSync()[0]).toBe(7);
    tf.dispose(Object.values(params));
  });

  it("leaves parameters whose shape changed at their fresh values and says why", () => {
    const state = encoder(["a"], [1]);
    const previous = previousModel(state, config(state, [8]));
    const cfg = config(state, [6]);
    const params = initNetwork(cfg, 3);
    const report = warmStart(params, cfg, state, previous);
    expect(report.fresh).toContain("bottom/0/kernel: shape [8,8] before, [8,6] now");
    expect(report.copied).not.toContain("bottom/0/kernel");
    expect(params["bottom/0/kernel"]!.dataSync()[0]).not.toBe(7);
    tf.dispose(Object.values(params));
  });

  it("starts cross layers afresh when their layout changed, and the parallel towers when new", () => {
    const state = encoder(["a"], [1]);
    const previous = previousModel(state, config(state, [8], "stacked"));
    const cfg = config(state, [8], "parallel");
    const params = initNetwork(cfg, 3);
    const report = warmStart(params, cfg, state, previous);
    expect(report.fresh).toContain("cross_0/up/kernel: cross layers stacked before, parallel now");
    expect(report.fresh).toContain("cross_tower_click/0/kernel: not in the earlier model");
    expect(report.copied).toContain("bottom/0/kernel");
    expect(params["cross_0/up/kernel"]!.dataSync()[0]).toBe(0);
    tf.dispose(Object.values(params));

    const same = initNetwork(config(state, [8], "stacked"), 3);
    expect(warmStart(same, config(state, [8]), state, previous).copied).toContain("cross_0/up/kernel");
    tf.dispose(Object.values(same));
  });
});
