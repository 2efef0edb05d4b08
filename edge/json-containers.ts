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

/**
 * Far deeper than a request (5 levels) or a feed's JSON nests; JSON.stringify of an origin body
 * nested some thousands deep overflows the stack when the reordered list is written back.
 */
export const MAX_JSON_DEPTH = 256;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const BRACKET = 0x5b;
const BRACE = 0x7b;
const CLOSE_BRACKET = 0x5d;
const CLOSE_BRACE = 0x7d;

/**
 * Whether `text` opens at most `limit` objects and arrays, nested at most `depth` deep. One pass,
 * each character read once: a regular expression for "a string, or a bracket" restarts at every
 * quote of an unterminated string, and 80 KB of `"\"\"\"…` took it 6 s.
 */
export function containersAtMost(
  text: string,
  limit: number = MAX_JSON_CONTAINERS,
  depth: number = MAX_JSON_DEPTH,
): boolean {
  let count = 0;
  let open = 0;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      // To the closing quote, over escapes; an unterminated string runs to the end.
      for (i++; i < n; i++) {
        const s = text.charCodeAt(i);
        if (s === BACKSLASH) i++;
        else if (s === QUOTE) break;
      }
    } else if (c === BRACKET || c === BRACE) {
      if (++count > limit || ++open > depth) return false;
    } else if (c === CLOSE_BRACKET || c === CLOSE_BRACE) open--;
  }
  return true;
}
