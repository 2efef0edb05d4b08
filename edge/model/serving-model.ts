/**
 * The model a worker serves: its manifest (checked at start-up), and, loaded lazily once per
 * isolate, the ONNX session and the compiled encoder.
 */
import { compileEncoder, type EncodedBatch, type Encoder } from "../../shared/encoder/encode.ts";
import type { ModelManifest } from "../../shared/manifest.ts";
import { createSession, type RunResult, type Session, Tensor } from "../runtime/ort.ts";
import { parseManifest } from "./manifest.ts";

/** What an entry file bundles: the parsed manifest.json and the bytes of model.onnx. */
export interface ModelSource {
  manifest: unknown;
  model: ArrayBuffer;
}

export interface LoadedModel {
  manifest: ModelManifest;
  encoder: Encoder;
  /** Runs the graph on an encoded batch; returns each head's values (one per row) by head name. */
  predict(batch: EncodedBatch): Promise<Record<string, Float32Array>>;
}

export interface ServingModel {
  /** The checked manifest, or undefined when it is unusable (every rerank then falls back). */
  manifest: ModelManifest | undefined;
  /** Loads the session and encoder on first use; later calls share the same promise. */
  load(): Promise<LoadedModel>;
}

export function servingModel(source: ModelSource): ServingModel {
  let manifest: ModelManifest | undefined;
  let manifestError: unknown;
  try {
    manifest = parseManifest(source.manifest);
  } catch (error) {
    manifestError = error;
  }
  let loading: Promise<LoadedModel> | undefined;
  return {
    manifest,
    load() {
      // A failure is cached too: the bundled bytes do not change, and retrying would spend
      // the start-up cost again on every request.
      loading ??= manifest ? loadModel(manifest, source.model) : Promise.reject(manifestError);
      return loading;
    },
  };
}

async function loadModel(manifest: ModelManifest, bytes: ArrayBuffer): Promise<LoadedModel> {
  const session = await createSession(bytes);
  checkGraph(session, manifest);
  const encoder = compileEncoder(manifest.features);
  const run = serialize(session);
  return {
    manifest,
    encoder,
    async predict(batch) {
      const { denseSize, idSlots } = manifest.features;
      const feeds: Record<string, Tensor> = {};
      if (manifest.inputs.dense)
        feeds[manifest.inputs.dense] = new Tensor("float32", batch.dense, [batch.rows, denseSize]);
      if (manifest.inputs.ids)
        feeds[manifest.inputs.ids] = new Tensor("int32", batch.ids, [batch.rows, idSlots]);
      const results = await run(feeds);
      const heads: Record<string, Float32Array> = {};
      for (const head of manifest.heads)
        heads[head.name] = headValues(results[head.output], head.name, batch.rows);
      return heads;
    },
  };
}

/** The graph must take the inputs and give the outputs the manifest names. */
function checkGraph(session: Session, manifest: ModelManifest): void {
  const inputs = [manifest.inputs.dense, manifest.inputs.ids].filter((x) => x !== undefined);
  for (const name of inputs)
    if (!session.inputNames.includes(name)) throw new Error(`model.onnx has no input "${name}"`);
  for (const head of manifest.heads)
    if (!session.outputNames.includes(head.output))
      throw new Error(`model.onnx has no output "${head.output}"`);
}

function headValues(tensor: Tensor | undefined, head: string, rows: number): Float32Array {
  if (!tensor || tensor.type !== "float32" || tensor.data.length !== rows)
    throw new Error(`head "${head}": expected float32 [${rows}, 1], got ${tensor?.type} [${tensor?.dims}]`);
  const values = tensor.data as Float32Array;
  for (const x of values) if (!Number.isFinite(x)) throw new Error(`head "${head}": non-finite output ${x}`);
  return values;
}

/** One run at a time per session: concurrent requests in an isolate queue instead of interleaving. */
function serialize(session: Session): (feeds: Record<string, Tensor>) => Promise<RunResult> {
  let queue: Promise<unknown> = Promise.resolve();
  return (feeds) => {
    const run = queue.then(() => session.run(feeds));
    queue = run.catch(() => undefined);
    return run;
  };
}
