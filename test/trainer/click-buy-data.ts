/**
 * Small seeded training data for trainer tests: 2 numbers and 1 id slot of 12 ids; click follows
 * the first number and the id, buy needs a click and a positive second number.
 */
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
