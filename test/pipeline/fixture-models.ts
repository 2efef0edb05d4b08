/**
 * Two model directories to publish, both copies of fixtures/model/: A as it is, and B with another
 * version in its manifest (the same files, so another manifest hash and another prefix).
 */
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface FixtureModels {
  dirA: string;
  dirB: string;
  /** Removes both copies. */
  remove(): Promise<void>;
}

export async function fixtureModels(prefix: string): Promise<FixtureModels> {
  const tmp = await mkdtemp(join(tmpdir(), prefix));
  const dirA = join(tmp, "a");
  const dirB = join(tmp, "b");
  await cp("fixtures/model", dirA, { recursive: true });
  await cp("fixtures/model", dirB, { recursive: true });
  const manifest = JSON.parse(await readFile(join(dirB, "manifest.json"), "utf8")) as { version: string };
  manifest.version = "b";
  await writeFile(join(dirB, "manifest.json"), JSON.stringify(manifest, null, 1));
  return { dirA, dirB, remove: () => rm(tmp, { recursive: true, force: true }) };
}
