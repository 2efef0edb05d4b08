/**
 * `export`: turns a trained model directory into DIR/model.onnx + DIR/manifest.json.
 * The graph is loaded and run by onnxruntime before anything is written, and the manifest is
 * written last, so a directory with a manifest always holds a complete, loadable model.
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import type { EncodedBatch } from "../../shared/encoder/encode.ts";
import type { HeadInfo, ModelManifest } from "../../shared/manifest.ts";
import { loadTrainedModel, type TrainedModel, writeAtomic } from "../artifact/trained-model.ts";
import type { Weights } from "../models/types.ts";
import { buildNetworkGraph } from "./network-graph.ts";
import { createGraph, ONNX_IR_VERSION, ONNX_OPSET } from "./onnx-graph.ts";
import { openSession, runHeads } from "./onnx-session.ts";

const TFJS_VERSION = "4.22.0";
const ORT_WEB_VERSION = "1.30.0";

export class ExportError extends Error {
  override name = "ExportError";
}

export interface ExportResult {
  manifest: ModelManifest;
  onnxBytes: Uint8Array;
}

export async function exportModelDir(dir: string): Promise<ExportResult> {
  const model = await loadTrainedModel(dir);
  const { bytes, manifest } = buildOnnx(model);
  await checkLoads(bytes, manifest);
  await writeAtomic(join(dir, "model.onnx"), bytes);
  const full: ModelManifest = { ...manifest, files: { "model.onnx": fileInfo(bytes) } };
  await writeAtomic(join(dir, "manifest.json"), `${JSON.stringify(full, null, 1)}\n`);
  return { manifest: full, onnxBytes: bytes };
}

/** Builds the ONNX bytes and the manifest (without file hashes) from a trained model. */
export function buildOnnx(model: TrainedModel): {
  bytes: Uint8Array;
  manifest: Omit<ModelManifest, "files">;
} {
  checkFinite(model.weights);
  const id = `${model.config.arch}-${weightsHash(model.weights).slice(0, 12)}`;
  const version = model.training.createdAt;
  const g = createGraph("mtrank");
  const inputs = buildNetworkGraph(g, model.weights, model.config);
  const bytes = g.toBytes({ "mtrank.id": id, "mtrank.version": version, "mtrank.arch": model.config.arch });
  const heads: HeadInfo[] = model.config.heads.map((h) => ({
    name: h.name,
    type: h.type,
    output: h.name,
    ...(h.type === "regression" ? { transform: h.transform ?? "none" } : {}),
  }));
  return {
    bytes,
    manifest: {
      id,
      version,
      createdAt: model.training.createdAt,
      arch: model.config.arch,
      heads,
      fusion: { defaults: { weights: Object.fromEntries(heads.map((h) => [h.name, 1])), mode: "sum" } },
      inputs,
      features: model.encoder,
      metrics: { validation: model.validation },
      runtime: {
        tfjs: TFJS_VERSION,
        onnxOpset: ONNX_OPSET,
        onnxIrVersion: ONNX_IR_VERSION,
        onnxruntimeWeb: ORT_WEB_VERSION,
      },
    },
  };
}

function checkFinite(weights: Weights): void {
  for (const [name, w] of Object.entries(weights)) {
    const bad = w.values.findIndex((x) => !Number.isFinite(x));
    if (bad >= 0)
      throw new ExportError(
        `export: parameter "${name}" has a non-finite value (${w.values[bad]}) at index ${bad}`,
      );
  }
}

/** Loads the graph in onnxruntime and runs one batch of all-missing rows: outputs must be finite. */
async function checkLoads(bytes: Uint8Array, manifest: Omit<ModelManifest, "files">): Promise<void> {
  const rows = 4;
  const { denseSize, idSlots, features } = manifest.features;
  const batch: EncodedBatch = {
    rows,
    dense: new Float32Array(rows * denseSize),
    ids: new Int32Array(rows * idSlots),
  };
  for (const f of features)
    if (f.kind === "categorical") for (let r = 0; r < rows; r++) batch.ids[r * idSlots + f.slot] = f.offset;
  let outputs: Record<string, Float32Array>;
  try {
    outputs = await runHeads(await openSession(bytes), manifest, batch);
  } catch (error) {
    throw new ExportError(`export: onnxruntime rejected the graph: ${(error as Error).message}`);
  }
  for (const head of manifest.heads) {
    const values = outputs[head.name];
    if (!values || values.length !== rows || !values.every(Number.isFinite)) {
      throw new ExportError(`export: head "${head.name}" gave no finite output for a test batch`);
    }
  }
}

function weightsHash(weights: Weights): string {
  const hash = createHash("sha256");
  for (const name of Object.keys(weights).sort()) {
    hash.update(name);
    const v = weights[name]!.values;
    hash.update(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
  }
  return hash.digest("hex");
}

function fileInfo(bytes: Uint8Array): { sha256: string; bytes: number } {
  return { sha256: createHash("sha256").update(bytes).digest("hex"), bytes: bytes.length };
}
