/**
 * Small seeded training data for trainer tests: 2 numbers and 1 id slot of 12 ids; click follows
 * the first number and the id, buy needs a click and a positive second number.
 */
import type { NetworkConfig } from "../../trainer/models/network.ts";
import { type ArchOptions, DEFAULT_ARCH_OPTIONS } from "../../trainer/models/types.ts";
import type { LabelledBatch } from "../../trainer/train/train-network.ts";
import { lcg } from "./lcg.ts";

export function clickBuyData(rows: number, seed: number): LabelledBatch {
  const random = lcg(seed);
  const dense = Float32Array.from({ length: rows * 2 }, () => random() * 2 - 1);
  const ids = Int32Array.from({ length: rows }, () => Math.floor(random() * 12));
  const click = Float32Array.from({ length: rows }, (_, r) =>
    dense[2 * r]! + (ids[r]! % 3) * 0.3 > 0.5 ? 1 : 0,
  );
  const buy = Float32Array.from({ length: rows }, (_, r) => (click[r]! && dense[2 * r + 1]! > 0 ? 1 : 0));
  return { rows, dense, ids, labels: { click, buy } };
}

/** A network over clickBuyData's inputs: embedding dim 3, heads click and buy. */
export function clickBuyConfig(arch: string, options: Partial<ArchOptions>): NetworkConfig {
  return {
    arch,
    options: { ...DEFAULT_ARCH_OPTIONS, ...options },
    embeddingDim: 3,
    denseSize: 2,
    idSlots: 1,
    vocabSize: 12,
    heads: [
      { name: "click", type: "binary" },
      { name: "buy", type: "binary" },
    ],
  };
}
