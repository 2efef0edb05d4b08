/** A dataset spec file (docs/dataset-spec.md), read and checked. */
import { readFile } from "node:fs/promises";
import { type DatasetSpec, parseSpec, SpecError } from "../../shared/spec.ts";

export async function readSpecFile(path: string): Promise<DatasetSpec> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(path, "utf8"));
  } catch (error) {
    throw new SpecError(`--spec: cannot read ${path}: ${(error as Error).message}`);
  }
  return parseSpec(json);
}
