/**
 * JSON for the files people open (manifest.json, training/network.json): objects and arrays of
 * objects indented one space a level, as JSON.stringify(value, null, 1) writes them, but an array
 * of plain values (a vocabulary, counts, a target column's rates, sizes) on one line. One value a
 * line made a film vocabulary's manifest twice its size in indentation and newlines, and nobody
 * reads 5,000 rates one per line. Parses to exactly what JSON.stringify's output parses to.
 */
export function readableJson(value: unknown): string {
  return write(value, "") ?? "null";
}

/** The text of `value` at `indent`, or undefined where JSON.stringify leaves it out (undefined, functions). */
function write(value: unknown, indent: string): string | undefined {
  const v = hasToJson(value) ? value.toJSON() : value;
  if (Array.isArray(v)) {
    if (v.length === 0) return "[]";
    const inner = `${indent} `;
    // Array.from visits a sparse array's holes, which JSON writes as null.
    const items = Array.from(v, (x) => write(x, inner) ?? "null");
    if (v.every((x) => x === null || typeof x !== "object")) return `[${items.join(",")}]`;
    return `[\n${items.map((item) => inner + item).join(",\n")}\n${indent}]`;
  }
  if (v !== null && typeof v === "object") {
    const inner = `${indent} `;
    const entries = Object.entries(v).flatMap(([key, x]) => {
      const text = write(x, inner);
      return text === undefined ? [] : [`${inner}${JSON.stringify(key)}: ${text}`];
    });
    return entries.length === 0 ? "{}" : `{\n${entries.join(",\n")}\n${indent}}`;
  }
  return JSON.stringify(v) as string | undefined;
}

function hasToJson(value: unknown): value is { toJSON(): unknown } {
  return (
    value !== null &&
    typeof value === "object" &&
    typeof (value as { toJSON?: unknown }).toJSON === "function"
  );
}
