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
  const n = Number(text);
  return Number.isFinite(n) ? n : Number.NaN;
}
