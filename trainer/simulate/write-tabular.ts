/** Files of a generated tabular set: one CSV per part (train, test, ...) and its dataset spec. */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** Writes DIR/<part>.csv (header `columns`, rows from `generate`) and DIR/spec.json; returns the paths. */
export function writeTabular<O>(
  dir: string,
  columns: readonly string[],
  parts: Record<string, O>,
  generate: (options: O) => string[][],
  spec: Record<string, unknown>,
): Record<string, string> {
  mkdirSync(dir, { recursive: true });
  const paths: Record<string, string> = {};
  for (const [name, options] of Object.entries(parts)) {
    paths[name] = join(dir, `${name}.csv`);
    const lines = [columns, ...generate(options)].map((r) => r.join(","));
    writeFileSync(paths[name]!, `${lines.join("\n")}\n`);
  }
  paths.spec = join(dir, "spec.json");
  writeFileSync(paths.spec, `${JSON.stringify(spec, null, 1)}\n`);
  return paths;
}
