/**
 * The export-time check of a factorised graph: it loads in onnxruntime and gives the plain
 * graph's head outputs on a request-shaped probe batch, within a tolerance, or nothing is written.
 */
import type { FactorisedInfo, ModelManifest } from "../../shared/manifest.ts";
import { maxScaledDiff } from "../core/metrics.ts";
import { ExportError } from "./export-error.ts";
import { openSession, runFactorisedHeads, runHeads } from "./onnx-session.ts";
import { requestProbeBatch } from "./probe-batch.ts";

export const FACTORISED_FILE = "model.factorised.onnx";
export const FACTORISED_INT8_FILE = "model.factorised.int8.onnx";

const PROBE_ROWS = 256;

/**
 * Returns the largest difference per head between the factorised and the plain graph, relative
 * above 1 (core/metrics.ts maxScaledDiff: a regression head outputs label units); throws above
 * `tolerance`.
 */
export async function checkFactorised(
  plainBytes: Uint8Array,
  factorisedBytes: Uint8Array,
  manifest: Omit<ModelManifest, "files">,
  info: FactorisedInfo,
  tolerance: number,
): Promise<Record<string, number>> {
  const batch = requestProbeBatch(manifest.features, PROBE_ROWS);
  const plain = await runHeads(await openSession(plainBytes), manifest, batch);
  let factorised: Record<string, Float32Array>;
  try {
    factorised = await runFactorisedHeads(
      await openSession(factorisedBytes),
      { ...manifest, factorised: info },
      batch,
    );
  } catch (error) {
    throw new ExportError(`export --factorised: onnxruntime rejected the graph: ${(error as Error).message}`);
  }
  const diffs: Record<string, number> = {};
  for (const head of manifest.heads) {
    const a = plain[head.name]!;
    const b = factorised[head.name];
    if (!b || b.length !== a.length)
      throw new ExportError(
        `export --factorised: head "${head.name}" gave ${b?.length ?? 0} values for ${a.length} rows`,
      );
    const max = maxScaledDiff(a, b);
    if (!(max <= tolerance))
      throw new ExportError(
        `export --factorised: head "${head.name}" differs from the plain graph by ${max} (> ${tolerance})`,
      );
    diffs[head.name] = max;
  }
  return diffs;
}
