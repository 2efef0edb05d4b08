/**
 * A model directory opened the way the edge serves it: manifest + ONNX graph in onnxruntime
 * (not TensorFlow.js), so `predict` and `evaluate` measure what the worker will return.
 */
import { access, readFile } from "node:fs/promises";
import { join } from "node:path";
import { compileEncoder, type Encoder, type FeatureValues } from "../../shared/encoder/encode.ts";
import type { ModelManifest } from "../../shared/manifest.ts";
import { type DatasetSpec, parseSpec } from "../../shared/spec.ts";
import type { ReadOptions } from "../data/read-rows.ts";
import { openVerifiedSession, runHeads, type Session } from "../export/onnx-session.ts";

export interface ServedModel {
  manifest: ModelManifest;
  encoder: Encoder;
  session: Session;
  file: string;
}

/** `flag`: the option that named `dir`, for the error a user reads (default --model). */
export async function openServedModel(dir: string, int8 = false, flag = "--model"): Promise<ServedModel> {
  const file = int8 ? "model.int8.onnx" : "model.onnx";
  let manifest: ModelManifest;
  try {
    manifest = JSON.parse(await readFile(join(dir, "manifest.json"), "utf8")) as ModelManifest;
  } catch (error) {
    throw new Error(`${flag}: ${dir} has no readable manifest.json (${(error as Error).message})`);
  }
  if (!manifest.files?.[file])
    throw new Error(`${flag}: ${dir} has no exported ${file}${int8 ? " (run export with --int8)" : ""}`);
  const bytes = await readFile(join(dir, file));
  const session = await openVerifiedSession(bytes, manifest.files[file], `${flag}: ${join(dir, file)}`);
  return { manifest, encoder: compileEncoder(manifest.features), session, file };
}

/** Head outputs for a list of records, computed in chunks so memory stays bounded. */
export async function scoreRows(
  model: ServedModel,
  rows: readonly FeatureValues[],
): Promise<Record<string, Float32Array>> {
  const out: Record<string, Float32Array> = Object.fromEntries(
    model.manifest.heads.map((h) => [h.name, new Float32Array(rows.length)]),
  );
  const chunk = 4096;
  for (let start = 0; start < rows.length; start += chunk) {
    const batch = model.encoder.encodeRows(rows.slice(start, start + chunk));
    const heads = await runHeads(model.session, model.manifest, batch);
    for (const h of model.manifest.heads) out[h.name]!.set(heads[h.name]!, start);
  }
  return out;
}

/** The dataset spec saved with the model (DIR/spec.json), or the one named by --spec. */
export async function specForModel(dir: string, specPath?: string): Promise<DatasetSpec | null> {
  const path = specPath ?? join(dir, "spec.json");
  const exists = await access(path).then(
    () => true,
    () => false,
  );
  if (!exists) {
    if (specPath) throw new Error(`--spec: cannot read ${specPath}`);
    return null;
  }
  try {
    return parseSpec(JSON.parse(await readFile(path, "utf8")));
  } catch (error) {
    throw new Error(`--spec: ${path}: ${(error as Error).message}`);
  }
}

/**
 * How to read a data file: from the spec when there is one, else guessed from its name, in any
 * case and by the names the pipeline reads as JSON lines (.jsonl, .ndjson, .json; .gz aside).
 */
export function readOptionsFor(spec: DatasetSpec | null, data: string): ReadOptions {
  if (spec) return specForFile(spec, data);
  return { format: JSONL_NAME.test(data) ? "jsonl" : "csv", delimiter: ",", header: true };
}

const JSONL_NAME = /\.(jsonl|ndjson|json)(\.gz)?$/i;
const CSV_NAME = /\.(csv|tsv)(\.gz)?$/i;

/**
 * The model's spec, read for `data`: a file whose name says JSON lines or CSV is read as such even
 * when the model was trained on the other (a CSV header row, for a CSV of the other kind); any
 * other name keeps the spec's format. A model trained on JSONL scores a CSV export, and the
 * reverse, without a spec of its own.
 */
export function specForFile(spec: DatasetSpec, data: string): DatasetSpec {
  if (spec.format === "csv" && JSONL_NAME.test(data)) return { ...spec, format: "jsonl" };
  if (spec.format === "jsonl" && CSV_NAME.test(data)) {
    const { columns: _columns, ...rest } = spec;
    return { ...rest, format: "csv", delimiter: /\.tsv(\.gz)?$/i.test(data) ? "\t" : ",", header: true };
  }
  return spec;
}
