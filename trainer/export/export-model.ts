/**
 * `export`: turns a trained model directory into DIR/model.onnx + DIR/manifest.json, with
 * `int8` also DIR/model.int8.onnx (quantize.ts), with `factorised` also
 * DIR/model.factorised.onnx (and its int8 twin; factorised-graph.ts). Every graph is loaded and run by onnxruntime
 * before anything is written, and the manifest is written last, so a directory with a manifest
 * always holds complete, loadable models.
 */
import { createHash } from "node:crypto";
import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { DEFAULT_MANIFEST_MAX_BYTES, DEFAULT_MODEL_MAX_BYTES } from "../../edge/model/remote.ts";
import type { EncodedBatch } from "../../shared/encoder/encode.ts";
import { type EncoderState, idSlotLayout } from "../../shared/encoder/state.ts";
import type { FactorisedInfo, HeadInfo, ModelManifest, QuantizationInfo } from "../../shared/manifest.ts";
import type { DatasetSpec } from "../../shared/spec.ts";
import { loadTrainedModel, type TrainedModel } from "../artifact/trained-model.ts";
import { maxAbsDiff } from "../core/metrics.ts";
import { createGraph, type GraphBuilder, ONNX_IR_VERSION, ONNX_OPSET } from "../core/onnx-graph.ts";
import { readableJson } from "../core/readable-json.ts";
import { writeAtomic } from "../core/write-atomic.ts";
import type { Weights } from "../models/types.ts";
import { ExportError } from "./export-error.ts";
import { checkFactorised, FACTORISED_FILE, FACTORISED_INT8_FILE } from "./export-factorised.ts";
import { buildFactorisedGraph, checkNoStackedCross } from "./factorised-graph.ts";
import { type FactorisedLayout, factorisedLayout } from "./factorised-layout.ts";
import { type FusionChoice, fusionDefaults, keptFusion } from "./fusion-defaults.ts";
import { int8AucDrop } from "./int8-auc.ts";
import { buildNetworkGraph, type NetworkGraphOptions } from "./network-graph.ts";
import { openSession, runHeads } from "./onnx-session.ts";
import { probeBatch } from "./probe-batch.ts";
import type { SlotRows, WeightsMode } from "./quantize.ts";
import { DEFAULT_INT8_FORM, type Int8Form } from "./quantize-form.ts";

const TFJS_VERSION = "4.22.0";
const ORT_WEB_VERSION = "1.30.0";

export const ONNX_FILE = "model.onnx";
export const INT8_ONNX_FILE = "model.int8.onnx";
/** Rows of the synthetic batch on which the int8 graph is compared with the float32 one. */
const PROBE_ROWS = 1024;

export { ExportError };

export interface ExportOptions {
  /** Also write model.int8.onnx (int8 weights) and the manifest's `quantization` section. */
  int8?: boolean;
  /** The int8 dense layers' form (quantize-form.ts): "integer" (default) or "qdq". */
  int8Form?: Int8Form;
  /**
   * Also write model.factorised.onnx (user/context features once per request; with `int8` also
   * model.factorised.int8.onnx) and the manifest's `factorised` section.
   */
  factorised?: boolean;
  /** With `int8`: labelled rows (and their spec) on which to measure each task's AUC drop. */
  int8Evaluation?: { data: string; spec: DatasetSpec };
  /**
   * The manifest's fusion defaults (fusion-defaults.ts). What it leaves out (weights, mode) is
   * kept from the directory's earlier manifest while the heads are the same; else 1 per binary
   * head, in a sum.
   */
  fusion?: FusionChoice;
}

export interface ExportResult {
  manifest: ModelManifest;
  /** Bytes of manifest.json as written. */
  manifestBytes: number;
  /**
   * What the worker will make of the files, for the CLI to print: a manifest over the worker's
   * default MTRANK_MANIFEST_MAX_BYTES, or a graph over its default MTRANK_MODEL_MAX_BYTES, which
   * it refuses from R2 unless that var is raised.
   */
  warnings: string[];
  onnxBytes: Uint8Array;
  /** model.int8.onnx, when exported with `int8`. */
  int8Bytes?: Uint8Array;
  /** model.factorised.onnx (and .int8.onnx), when exported with `factorised`. */
  factorisedBytes?: { float32: Uint8Array; int8?: Uint8Array };
}

/** The fusion defaults of the manifest an earlier export wrote into `dir`, if it has a readable one. */
async function previousFusion(dir: string): Promise<ModelManifest["fusion"]["defaults"] | undefined> {
  try {
    const manifest = JSON.parse(await readFile(join(dir, "manifest.json"), "utf8")) as Partial<ModelManifest>;
    return manifest.fusion?.defaults;
  } catch {
    return undefined;
  }
}

export async function exportModelDir(dir: string, options: ExportOptions = {}): Promise<ExportResult> {
  const model = await loadTrainedModel(dir);
  const built = buildOnnx(model);
  const { bytes } = built;
  const previous = await previousFusion(dir);
  const manifest = {
    ...built.manifest,
    fusion: {
      defaults: fusionDefaults(
        built.manifest.heads,
        keptFusion(built.manifest.heads, previous, options.fusion),
      ),
    },
  };
  await checkLoads(bytes, manifest);
  const files: ModelManifest["files"] = { [ONNX_FILE]: fileInfo(bytes) };
  let int8: { bytes: Uint8Array; quantization: QuantizationInfo } | undefined;
  if (options.int8) {
    const form = options.int8Form ?? DEFAULT_INT8_FORM;
    const int8Bytes = buildOnnx(model, "int8", form).bytes;
    await checkLoads(int8Bytes, manifest);
    int8 = { bytes: int8Bytes, quantization: await compareInt8(bytes, int8Bytes, manifest, form) };
    if (options.int8Evaluation) {
      const { data, spec } = options.int8Evaluation;
      const report = await int8AucDrop(manifest, spec, data, bytes, int8Bytes);
      int8.quantization = { ...int8.quantization, aucDrop: report.aucDrop, aucRows: report.rows };
    }
    files[INT8_ONNX_FILE] = fileInfo(int8Bytes);
  }
  let factorised: { info: FactorisedInfo; float32: Uint8Array; int8?: Uint8Array } | undefined;
  if (options.factorised) {
    checkNoStackedCross(model.weights);
    const layout = factorisedLayout(model.encoder);
    const float = buildFactorisedOnnx(model, layout);
    const info: FactorisedInfo = { file: FACTORISED_FILE, inputs: float.inputs, ...layout };
    await checkFactorised(bytes, float.bytes, manifest, info, 1e-5);
    files[FACTORISED_FILE] = fileInfo(float.bytes);
    factorised = { info, float32: float.bytes };
    if (int8) {
      const q = buildFactorisedOnnx(model, layout, "int8", int8.quantization.form).bytes;
      // The split kernels get their own per-channel scales: close to the plain int8 graph, not equal.
      await checkFactorised(int8.bytes, q, manifest, info, 0.02);
      files[FACTORISED_INT8_FILE] = fileInfo(q);
      factorised = { info: { ...info, int8File: FACTORISED_INT8_FILE }, float32: float.bytes, int8: q };
    }
  }
  await writeAtomic(join(dir, ONNX_FILE), bytes);
  if (int8) await writeAtomic(join(dir, INT8_ONNX_FILE), int8.bytes);
  if (factorised) await writeAtomic(join(dir, FACTORISED_FILE), factorised.float32);
  if (factorised?.int8) await writeAtomic(join(dir, FACTORISED_INT8_FILE), factorised.int8);
  const full: ModelManifest = {
    ...manifest,
    files,
    ...(int8 ? { quantization: int8.quantization } : {}),
    ...(factorised ? { factorised: factorised.info } : {}),
  };
  const manifestText = `${readableJson(full)}\n`;
  await writeAtomic(join(dir, "manifest.json"), manifestText);
  // Each export writes the graphs it is asked for, and the manifest lists exactly those. A graph
  // an earlier export left (an int8 file from before a retrain) holds other weights: removed once
  // the new manifest no longer names it, so nothing can serve it beside this model's manifest.
  for (const file of [INT8_ONNX_FILE, FACTORISED_FILE, FACTORISED_INT8_FILE])
    if (!(file in files)) await rm(join(dir, file), { force: true });
  const manifestBytes = Buffer.byteLength(manifestText);
  return {
    manifest: full,
    manifestBytes,
    warnings: [
      ...manifestWarnings(manifestBytes, full),
      ...graphWarnings(Object.fromEntries(Object.entries(files).map(([file, info]) => [file, info.bytes]))),
    ],
    onnxBytes: bytes,
    ...(int8 ? { int8Bytes: int8.bytes } : {}),
    ...(factorised
      ? {
          factorisedBytes: {
            float32: factorised.float32,
            ...(factorised.int8 ? { int8: factorised.int8 } : {}),
          },
        }
      : {}),
  };
}

/** A manifest the worker refuses from R2 by default: said at export, not found at serving. */
export function manifestWarnings(bytes: number, manifest: ModelManifest): string[] {
  if (bytes <= DEFAULT_MANIFEST_MAX_BYTES) return [];
  const entries = manifest.features.features
    .filter((f) => "vocab" in f && f.vocab !== undefined)
    .map((f) => `${f.name} ${(f as { vocab: string[] }).vocab.length}`);
  return [
    `manifest.json is ${bytes} bytes, over the worker's default MTRANK_MANIFEST_MAX_BYTES (${DEFAULT_MANIFEST_MAX_BYTES}): ` +
      `the worker refuses it from R2 unless that var is raised (vocabulary entries: ${entries.join(", ")}; ` +
      "hashBuckets or a higher minCount in the spec shrink them; docs/worker.md, large catalogs)",
  ];
}

/** Graphs the worker refuses from R2 by default (edge/model/remote.ts DEFAULT_MODEL_MAX_BYTES). */
export function graphWarnings(sizes: Readonly<Record<string, number>>): string[] {
  return Object.entries(sizes)
    .filter(([, bytes]) => bytes > DEFAULT_MODEL_MAX_BYTES)
    .map(
      ([file, bytes]) =>
        `${file} is ${bytes} bytes, over the worker's default MTRANK_MODEL_MAX_BYTES (${DEFAULT_MODEL_MAX_BYTES}): ` +
        "the worker refuses it from R2 unless that var is raised, and an isolate's 128 MB holds about 2.5–3.6 times a graph's size while it loads; " +
        "serve the int8 graph (MTRANK_MODEL_WEIGHTS=int8), or shrink the embedding table (hashBuckets or a higher minCount in the spec, a smaller --embedding-dim)",
    );
}

/**
 * Builds the ONNX bytes and the manifest (without file hashes) from a trained model; `weights`
 * picks float32 (model.onnx) or int8 (model.int8.onnx) weights. The manifest is the same for both.
 */
export function buildOnnx(
  model: TrainedModel,
  weights: WeightsMode = "float32",
  int8Form: Int8Form = DEFAULT_INT8_FORM,
): {
  bytes: Uint8Array;
  manifest: Omit<ModelManifest, "files">;
} {
  const { id, version } = modelIdentity(model);
  let inputs: ModelManifest["inputs"] = {};
  const bytes = graphBytes(model, weights, int8Form, "plain", (g, options) => {
    inputs = buildNetworkGraph(g, model.weights, model.config, options);
  });
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
      fusion: { defaults: fusionDefaults(heads) },
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

/**
 * The factorised graph's bytes (see factorised-graph.ts) and its input names; `layout` splits the
 * plain inputs by side (factorised-layout.ts).
 */
export function buildFactorisedOnnx(
  model: TrainedModel,
  layout: FactorisedLayout,
  weights: WeightsMode = "float32",
  int8Form: Int8Form = DEFAULT_INT8_FORM,
): { bytes: Uint8Array; inputs: FactorisedInfo["inputs"] } {
  let inputs: FactorisedInfo["inputs"] = {};
  const bytes = graphBytes(model, weights, int8Form, "factorised", (g, options) => {
    inputs = buildFactorisedGraph(g, model.weights, model.config, layout, options);
  });
  return { bytes, inputs };
}

function modelIdentity(model: TrainedModel): { id: string; version: string } {
  return {
    id: `${model.config.arch}-${weightsHash(model.weights).slice(0, 12)}`,
    version: model.training.createdAt,
  };
}

/** One graph, with the metadata every exported file carries (id, version, arch, weights, form). */
function graphBytes(
  model: TrainedModel,
  weights: WeightsMode,
  int8Form: Int8Form,
  form: "plain" | "factorised",
  build: (g: GraphBuilder, options: NetworkGraphOptions) => void,
): Uint8Array {
  checkFinite(model.weights);
  const { id, version } = modelIdentity(model);
  const g = createGraph("mtrank");
  build(g, weights === "int8" ? { weights, int8Form, slotRows: slotRows(model.encoder) } : {});
  return g.toBytes({
    "mtrank.id": id,
    "mtrank.version": version,
    "mtrank.arch": model.config.arch,
    ...(weights === "float32" ? {} : { "mtrank.weights": weights }),
    ...(form === "plain" ? {} : { "mtrank.graph": form }),
  });
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
  const { denseSize, idSlots } = manifest.features;
  const batch: EncodedBatch = {
    rows,
    dense: new Float32Array(rows * denseSize),
    ids: new Int32Array(rows * idSlots),
  };
  for (const s of idSlotLayout(manifest.features))
    for (let r = 0; r < rows; r++) batch.ids[r * idSlots + s.slot] = s.offset;
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

/** The embedding rows each id slot reads: its categorical feature's block of the shared table. */
function slotRows(state: EncoderState): SlotRows[] {
  const layout = idSlotLayout(state);
  return Array.from({ length: state.idSlots }, (_, slot) => {
    const rows = layout[slot];
    if (rows?.slot !== slot)
      throw new ExportError(`export: no feature of the encoder writes id slot ${slot}`);
    return { offset: rows.offset, size: rows.size };
  });
}

/**
 * Runs the float32 and the int8 graph on the same synthetic batch (every feature drawn over its
 * encoder range, seeded, so the manifest is reproducible) and reports how far the heads move.
 */
async function compareInt8(
  floatBytes: Uint8Array,
  int8Bytes: Uint8Array,
  manifest: Omit<ModelManifest, "files">,
  form: Int8Form,
): Promise<QuantizationInfo> {
  const batch = probeBatch(manifest.features, PROBE_ROWS);
  const reference = await runHeads(await openSession(floatBytes), manifest, batch);
  const quantized = await runHeads(await openSession(int8Bytes), manifest, batch);
  const diffs: Record<string, number> = {};
  for (const head of manifest.heads) {
    diffs[head.name] = roundTo(maxAbsDiff(reference[head.name]!, quantized[head.name]!), 3);
  }
  return {
    file: INT8_ONNX_FILE,
    weights: "int8-symmetric",
    form,
    bytesRatio: roundTo(int8Bytes.length / floatBytes.length, 4),
    maxAbsDiff: diffs,
    probeRows: batch.rows,
  };
}

/** `digits` significant digits, so the manifest does not carry float noise. */
function roundTo(x: number, digits: number): number {
  return x === 0 ? 0 : Number(x.toPrecision(digits));
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
