/** Train/validation split: by group when the spec has one (a ranked list never straddles it). */
import { fnv1a } from "../../shared/encoder/hash.ts";

/** Returns the validation row indices and the training row indices. */
export function splitRows(
  count: number,
  groups: readonly string[] | null,
  validFraction: number,
  seed: number,
): { train: number[]; valid: number[] } {
  const train: number[] = [];
  const valid: number[] = [];
  const threshold = validThreshold(validFraction);
  for (let i = 0; i < count; i++) {
    (splitHash(groups ? groups[i]! : `#${i}`, seed) < threshold ? valid : train).push(i);
  }
  return { train, valid };
}

/** A row (key `#index`) or group (its key) validates when its hash is below validThreshold. */
export function splitHash(key: string, seed: number): number {
  return mix32(fnv1a(`${seed}:${key}`));
}

export function validThreshold(validFraction: number): number {
  return validFraction * 2 ** 32;
}

/** murmur3's finaliser: spreads FNV's low-entropy outputs for short, similar keys over 32 bits. */
export function mix32(h: number): number {
  let x = h >>> 0;
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}
