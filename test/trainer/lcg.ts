/** A tiny seeded generator for synthetic training data in tests: uniform in [0, 1). */
export function lcg(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s / 2147483648;
  };
}
