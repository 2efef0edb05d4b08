/**
 * Writes a file under a temporary name beside it, then renames it into place, so a reader never
 * sees a half-written file (model files, manifests, reports, checkpoints).
 */
import { renameSync, writeFileSync } from "node:fs";
import { rename, writeFile } from "node:fs/promises";

function temporaryName(path: string): string {
  return `${path}.tmp-${process.pid}`;
}

export async function writeAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = temporaryName(path);
  await writeFile(tmp, data);
  await rename(tmp, path);
}

/** The same, synchronously (checkpoints are written inside the training loop). */
export function writeAtomicSync(path: string, data: string | Uint8Array): void {
  const tmp = temporaryName(path);
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}
