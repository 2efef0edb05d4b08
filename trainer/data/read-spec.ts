/** A dataset spec file (docs/dataset-spec.md), read and checked. */
import { readFile } from "node:fs/promises";
import { type DatasetSpec, parseSpec, SpecError } from "../../shared/spec.ts";

/** `field`: what named the file, for the error a user reads (a CLI flag, or a config field). */
export async function readSpecFile(path: string, field = "--spec"): Promise<DatasetSpec> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(path, "utf8"));
  } catch (error) {
    throw new SpecError(`${field}: cannot read ${path}: ${(error as Error).message}`);
  }
  return parseSpec(json);
}
