/**
 * Parses an origin's JSON body for reranking only when writing it back changes no value. A number
 * JavaScript cannot hold exactly (a 64-bit id such as 10000000000000001, or 1e400, which parses to
 * Infinity and would be written as null) would come back altered once the reordered body is
 * serialised, so such a body is not reranked: it passes through byte for byte.
 *
 * The check scans the text's tokens once (strings skipped whole, so digits inside them never
 * count) and looks closer only at number literals that may not survive a round trip: over 15
 * characters, or with an exponent. A literal of at most 15 significant digits and no exponent
 * comes back from a double unchanged (DBL_DIG). The scan costs about what JSON.parse does (0.2 ms
 * on a 29 KB list); a reviver reading every value's source text cost ten times that.
 */

/** A whole string (skipped), or a number literal (group 1). Unrolled so long strings do not backtrack. */
const TOKEN = /"[^"\\]*(?:\\.[^"\\]*)*"|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)/g;

/** The parsed body, or undefined when one of its numbers would not survive a round trip. */
export function parseExactJson(text: string): unknown {
  const value: unknown = JSON.parse(text);
  TOKEN.lastIndex = 0;
  for (let m = TOKEN.exec(text); m !== null; m = TOKEN.exec(text)) {
    const literal = m[1];
    if (literal === undefined || (literal.length <= 15 && !/[eE]/.test(literal))) continue;
    if (canonicalNumber(literal) !== canonicalNumber(String(Number(literal)))) return undefined;
  }
  return value;
}

/** A decimal literal as sign, significant digits and exponent: "1.10" and "11e-1" are "11e-1". */
function canonicalNumber(literal: string): string {
  const m = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(literal);
  if (!m) return literal;
  const [, sign, int = "", frac = "", exp = "0"] = m;
  const digits = `${int}${frac}`.replace(/^0+/, "");
  const significant = digits.replace(/0+$/, "");
  // -0 is written back as 0, which no reader tells apart.
  if (significant === "") return "0";
  return `${sign}${significant}e${Number(exp) - frac.length + (digits.length - significant.length)}`;
}
