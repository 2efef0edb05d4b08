/**
 * JSON.parse has no limit but the text's length, and 4 MiB of `{},{},…` is two million objects:
 * ~0.4 s of CPU and ~100 MB in workerd for one request, near the isolate's 128 MB with a few at
 * once. Objects and arrays are counted before parsing (strings skipped whole, so brackets inside
 * them never count), and a text with more than a real request or list needs is not parsed.
 */

/**
 * Far above any real body: 1,000 candidates with a features object and a few lists each, or an
 * origin list of 1,000 items of nested objects, hold a few thousand to a few tens of thousands.
 */
export const MAX_JSON_CONTAINERS = 200_000;

/** A whole string (skipped), or an opening bracket. Unrolled so long strings do not backtrack. */
const TOKEN = /"[^"\\]*(?:\\.[^"\\]*)*"|[[{]/g;

/** Whether `text` opens at most `limit` objects and arrays. */
export function containersAtMost(text: string, limit: number = MAX_JSON_CONTAINERS): boolean {
  let count = 0;
  TOKEN.lastIndex = 0;
  for (let m = TOKEN.exec(text); m !== null; m = TOKEN.exec(text))
    if (m[0].length === 1 && ++count > limit) return false;
  return true;
}
