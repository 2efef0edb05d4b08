/** FNV-1a 32-bit over UTF-16 code units: tiny, fast, identical in Node and workerd. */
export function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** The bucket (0 .. buckets − 1) a hashed feature puts `key` in: one rule for fitting and encoding. */
export function hashBucket(key: string, buckets: number): number {
  return fnv1a(key) % buckets;
}
