/**
 * `export --int8 --data F`: per-task AUC of model.onnx and model.int8.onnx on labelled rows, both
 * run by onnxruntime, so the manifest can report what int8 costs in ranking quality (the issue's
 * bound: a drop of at most 0.002).
 */

import { compileEncoder } from "../../shared/encoder/encode.ts";
import type { ModelManifest } from "../../shared/manifest.ts";
import type { DatasetSpec } from "../../shared/spec.ts";
import { loadDataset } from "../data/load-dataset.ts";
import { labelledAuc } from "../metrics/labelled-rows.ts";
import { openSession, runHeads } from "./onnx-session.ts";

export interface Int8AucReport {
  rows: number;
  /** Per binary head with labels in the file: float32 AUC − int8 AUC (negative: int8 scored higher). */
  aucDrop: Record<string, number>;
}

/** Rows per session.run. The int8 graph quantizes each activation with one scale per call, so its
 * outputs depend a little on which rows share a batch. */
export const INT8_AUC_CHUNK = 4096;

export async function int8AucDrop(
  manifest: Omit<ModelManifest, "files">,
  spec: DatasetSpec,
  data: string,
  floatBytes: Uint8Array,
  int8Bytes: Uint8Array,
): Promise<Int8AucReport> {
  const dataset = await loadDataset(data, spec);
  const encoder = compileEncoder(manifest.features);
  const sessions = [await openSession(floatBytes), await openSession(int8Bytes)];
  const heads = manifest.heads.filter((h) => h.type === "binary" && dataset.labels[h.name]);
  const scores = sessions.map(() =>
    Object.fromEntries(heads.map((h) => [h.name, new Float32Array(dataset.rows.length)])),
  );
  for (let start = 0; start < dataset.rows.length; start += INT8_AUC_CHUNK) {
    const batch = encoder.encodeRows(dataset.rows.slice(start, start + INT8_AUC_CHUNK));
    for (let s = 0; s < sessions.length; s++) {
      const out = await runHeads(sessions[s]!, manifest, batch);
      for (const h of heads) scores[s]![h.name]!.set(out[h.name]!, start);
    }
  }
  const aucDrop = Object.fromEntries(
    heads.map((h) => {
      const labels = dataset.labels[h.name]!;
      return [h.name, labelledAuc(labels, scores[0]![h.name]!) - labelledAuc(labels, scores[1]![h.name]!)];
    }),
  );
  return { rows: dataset.rows.length, aucDrop };
}
