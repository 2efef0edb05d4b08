/** Reading raw values (CSV strings or JSON values) the same way at training and at serving time. */

export interface ValueRules {
  trim: boolean;
  missing: ReadonlySet<string>;
}

/** A category key, or null when the value is missing. Numbers use JS's shortest form (5, not 5.0). */
export function categoryOf(value: unknown, rules: ValueRules): string | null {
  if (value === null || value === undefined) return null;
  if (typeof value === "number") return Number.isFinite(value) ? String(value) : null;
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value !== "string") return null;
  const text = rules.trim ? value.trim() : value;
  return rules.missing.has(text) ? null : text;
}

/** A finite number, null when missing, NaN when present but not a number (the caller decides). */
export function numberOf(value: unknown, rules: ValueRules): number | null {
  if (value === null || value === undefined) return null;
  if (typeof value === "number") return Number.isFinite(value) ? value : Number.NaN;
  if (typeof value === "boolean") return value ? 1 : 0;
  if (typeof value !== "string") return Number.NaN;
  const text = rules.trim ? value.trim() : value;
  if (rules.missing.has(text)) return null;
  return decimalOf(text);
}

/**
 * The finite number a text spells in decimal (digits, an optional sign, point and exponent;
 * whitespace around it is no mistake about which number it is), else NaN. Number() alone reads
 * more: "" and " " as 0, "0x10" as 16, "0b11" as 3, "0o7" as 7, "Infinity" as an infinity. In a
 * log's number column those are a blank or a data bug, not the number, and an infinity cannot be
 * standardised.
 */
export function decimalOf(text: string): number {
  const n = Number(text);
  if (!Number.isFinite(n)) return Number.NaN;
  // A digit 1-9, a sign or a point first starts a decimal; the non-decimal forms and the blanks
  // Number() reads start with "0" or whitespace (or are empty).
  const first = text.charCodeAt(0);
  if (first === 48 || !((first > 48 && first <= 57) || first === 45 || first === 43 || first === 46)) {
    const body = text.trimStart();
    if (body === "") return Number.NaN;
    const radix = body.charCodeAt(1) | 0x20; // lower case
    if (body.charCodeAt(0) === 48 && (radix === 0x78 || radix === 0x62 || radix === 0x6f)) return Number.NaN;
  }
  return n;
}

/**
 * A raw value as an error message shows it: JSON, except for the numbers JSON cannot hold
 * (JSON.stringify writes NaN and the infinities as null), which a Parquet column can.
 */
export function shownValue(value: unknown): string {
  return typeof value === "number" && !Number.isFinite(value) ? String(value) : JSON.stringify(value);
}

/**
 * The categories of a bag value: a JSON array's elements, or a string split by `separator`
 * (each part trimmed and checked against the missing tokens like a single category). Missing or
 * empty parts are left out; an absent value is an empty bag. Order and repeats are kept.
 */
export function categoriesOf(value: unknown, separator: string, rules: ValueRules): string[] {
  if (value === null || value === undefined) return [];
  if (Array.isArray(value)) return keysOf(value, rules);
  if (typeof value !== "string") {
    const key = categoryOf(value, rules);
    return key === null ? [] : [key];
  }
  const text = rules.trim ? value.trim() : value;
  if (text === "" || rules.missing.has(text)) return [];
  return keysOf(text.split(separator), rules);
}

function keysOf(parts: readonly unknown[], rules: ValueRules): string[] {
  const keys: string[] = [];
  for (const part of parts) {
    const key = categoryOf(part, rules);
    if (key !== null && key !== "") keys.push(key);
  }
  return keys;
}

/** A vector value that cannot be read: the reason, for an error that names the feature. */
export class VectorValueError extends Error {
  override name = "VectorValueError";
}

/**
 * The numbers of a vector value (a JSON array, or a string split by `separator`; runs of a
 * whitespace separator count as one), or null when missing. Throws VectorValueError when the
 * value is present but is not `dim` finite numbers.
 */
export function vectorOf(value: unknown, dim: number, separator: string, rules: ValueRules): number[] | null {
  if (value === null || value === undefined) return null;
  let parts: readonly unknown[];
  if (Array.isArray(value)) parts = value;
  else if (typeof value === "string") {
    const text = rules.trim ? value.trim() : value;
    if (rules.missing.has(text)) return null;
    const split = text.split(separator);
    parts = separator.trim() === "" ? split.filter((p) => p !== "") : split;
  } else throw new VectorValueError(`expected ${dim} numbers, got ${typeof value}`);
  if (parts.length !== dim) throw new VectorValueError(`expected ${dim} numbers, got ${parts.length}`);
  const out = new Array<number>(dim);
  for (let i = 0; i < dim; i++) {
    const part = parts[i];
    const x = typeof part === "number" || typeof part === "string" ? numberOf(part, rules) : Number.NaN;
    if (x === null || Number.isNaN(x))
      throw new VectorValueError(`element ${i}: ${shownValue(part)} is not a finite number`);
    // A vector with "scaling": "none" reaches the network as given, as float32: a larger element
    // would be Infinity there and every score NaN. Scaled ones are refused alike, so that what a
    // log accepts does not depend on the spec's scaling.
    if (Math.abs(x) > FLOAT32_MAX)
      throw new VectorValueError(
        `element ${i}: ${x} is too large (at most ${FLOAT32_MAX.toPrecision(3)} in magnitude)`,
      );
    out[i] = x;
  }
  return out;
}

/**
 * Why a category value cannot be read, when it is a JSON number that is an integer beyond 2^53:
 * JSON.parse has already rounded it to the nearest double (12345678901234567048 reads
 * 12345678901234567000), so neighbouring ids would read as one. Undefined for any other value.
 * The trainer's record checks and the encoder (a worker's request) both refuse it.
 */
export function roundedIdProblem(value: unknown): string | undefined {
  if (typeof value !== "number" || !Number.isInteger(value) || Number.isSafeInteger(value)) return undefined;
  return `${value} is an integer beyond 2^53, which JSON readers round (neighbouring ids read alike): write ids as strings`;
}

/** The largest finite float32: what a graph's float inputs can hold. */
export const FLOAT32_MAX = 3.4028234663852886e38;
