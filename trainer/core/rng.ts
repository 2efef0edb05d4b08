/**
 * The trainer's one seeded PRNG (mulberry32) with a few distribution helpers: the simulator,
 * permutation importance, probe batches and the training loop's batch shuffles all draw from it.
 * Deterministic across platforms: only 32-bit integer ops and Math.imul.
 */

export interface Rng {
  /** Uniform in [0, 1). */
  uniform(): number;
  /** Standard normal N(0, 1) via Box-Muller. */
  normal(): number;
  /** Uniform integer in [0, n). */
  int(n: number): number;
  /** Uniform element of a non-empty array. */
  pick<T>(items: readonly T[]): T;
}

/** Mixes a seed (and an optional stream number) into a well-spread 32-bit state (splitmix32 finalizer). */
export function mixSeed(seed: number, stream = 0): number {
  let z = ((seed | 0) + Math.imul(stream | 0, 0x9e3779b9) + 0x9e3779b9) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/**
 * The bare generator: uniform in [0, 1) from a 32-bit state taken as given. {@link createRng}
 * mixes its seed into the state first; the training loop's batch shuffles start from the seed
 * itself (so a seed keeps giving the batches it always gave).
 */
export function mulberry32(state: number): () => number {
  let a = state >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function createRng(seed: number, stream = 0): Rng {
  const uniform = mulberry32(mixSeed(seed, stream));
  let spare: number | null = null;

  const normal = (): number => {
    if (spare !== null) {
      const s = spare;
      spare = null;
      return s;
    }
    let u1 = uniform();
    while (u1 <= Number.MIN_VALUE) u1 = uniform();
    const u2 = uniform();
    const r = Math.sqrt(-2 * Math.log(u1));
    const theta = 2 * Math.PI * u2;
    spare = r * Math.sin(theta);
    return r * Math.cos(theta);
  };

  const int = (n: number): number => {
    if (!Number.isInteger(n) || n <= 0)
      throw new RangeError(`rng.int: n must be a positive integer, got ${n}`);
    return Math.floor(uniform() * n);
  };

  const pick = <T>(items: readonly T[]): T => {
    if (items.length === 0) throw new RangeError("rng.pick: empty array");
    return items[int(items.length)] as T;
  };

  return { uniform, normal, int, pick };
}

/** In-place Fisher-Yates shuffle. */
export function shuffle<T>(rng: Rng, items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const tmp = items[i] as T;
    items[i] = items[j] as T;
    items[j] = tmp;
  }
  return items;
}

/** 0..n-1 in a Fisher-Yates order drawn from `random` (mini-batch order). */
export function shuffled(n: number, random: () => number): Int32Array {
  const order = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const t = order[i]!;
    order[i] = order[j]!;
    order[j] = t;
  }
  return order;
}

/** Cumulative weights for weighted sampling with {@link sampleCumulative}. */
export function cumulative(weights: readonly number[]): Float64Array {
  const out = new Float64Array(weights.length);
  let acc = 0;
  for (let i = 0; i < weights.length; i++) {
    acc += weights[i] ?? 0;
    out[i] = acc;
  }
  return out;
}

/** Index drawn proportionally to the weights that produced `cum` (binary search). */
export function sampleCumulative(rng: Rng, cum: Float64Array): number {
  const total = cum[cum.length - 1] ?? 0;
  const x = rng.uniform() * total;
  let lo = 0;
  let hi = cum.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((cum[mid] ?? 0) > x) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}
