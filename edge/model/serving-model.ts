/**
 * The model a worker serves: its manifest (checked at start-up), and, loaded lazily once per
 * isolate, the ONNX session and the compiled encoder.
 *
 * What it keeps once loaded is the session, the encoder and the manifest without its per-entry
 * arrays (servedManifest): the vocabularies, training counts and target rates a manifest.json
 * carries, and the graph's bytes, are let go once the encoder and session are built. Kept whole,
 * with a Map per vocabulary, a model of 231,600 entries would hold 27 MB of JS memory in Node
 * (heap and array buffers) instead of 8.4 MB, and the isolate serving it would sit at 42 MiB at
 * rest instead of 31.5 MiB (bench/load-edge.ts).
 *
 * onnxruntime keeps every session in wasm memory, which never shrinks, until release() is called:
 * garbage collection never frees one. So a session is released as soon as it cannot serve: a
 * graph or trial run refused while loading, and a model retired (replaced, or loaded past its
 * deadline) once the last request holding it is done. A request takes its model before it awaits
 * load() and predict(), and releasing the session under it would turn it into a fallback.
 */
import { compileEncoder, type EncodedBatch, type Encoder } from "../../shared/encoder/encode.ts";
import type { EncoderLayout } from "../../shared/encoder/state.ts";
import type { ModelManifest, ServedManifest } from "../../shared/manifest.ts";
import { describeError, logLine } from "../log.ts";
import {
  createSession,
  type InferenceSession,
  type RunResult,
  type Session,
  type Tensor,
} from "../runtime/ort.ts";
import { type FeedPlan, type Feeds, factorisedFeeds, type GraphInput, plainFeeds } from "./feeds.ts";
import { checkGraphOps } from "./graph-ops.ts";
import { parseManifest, servedManifest } from "./manifest.ts";
import { WARM_UP_RUNS, warmUpRequest } from "./warm-up.ts";

/** What an entry file bundles: the parsed manifest.json and the bytes of model.onnx. */
export interface ModelSource {
  manifest: unknown;
  model: ArrayBuffer;
  /**
   * The bytes of the manifest's `factorised.file` (user/context part at batch 1). When both are
   * present it serves instead of `model`; when it fails to load, `model` serves.
   */
  factorised?: ArrayBuffer;
  /** The file `model` was read from, as messages name it (default "model.onnx"). */
  modelFile?: string;
  /** The file `factorised` was read from (default the manifest's `factorised.file`). */
  factorisedFile?: string;
  /** Trial runs while loading (default WARM_UP_RUNS; 0: none; see warm-up.ts). */
  warmUpRuns?: number;
}

/** Which graph answers: the factorised one runs its user/context layers once per request. */
export type GraphKind = "plain" | "factorised";

export interface LoadedModel {
  manifest: ServedManifest;
  encoder: Encoder<EncoderLayout>;
  graph: GraphKind;
  /** Runs the graph on an encoded batch; returns each head's values (one per row) by head name. */
  predict(batch: EncodedBatch): Promise<Record<string, Float32Array>>;
}

export interface ServingModel {
  /**
   * The checked manifest less its per-entry arrays (servedManifest), or undefined when it is
   * unusable (every rerank then falls back).
   */
  manifest: ServedManifest | undefined;
  /** Loads the session and encoder on first use; later calls share the same promise. */
  load(): Promise<LoadedModel>;
  /**
   * Marks a request that will use the model; it must call the returned function (once) when it
   * no longer does. A retired model's sessions are released when the last such request is done.
   */
  hold(): () => void;
  /**
   * The model is no longer handed to new requests: its sessions are released once no request
   * holds it, and load() then rejects. The bundled model is never retired.
   */
  retire(): void;
}

/** A loaded model and what releases its session. */
interface OpenModel extends LoadedModel {
  /** Releases the session once the runs already queued on it are done. */
  close(): Promise<void>;
}

export function servingModel(source: ModelSource): ServingModel {
  let checked: ModelManifest | undefined;
  let manifestError: unknown;
  try {
    checked = parseManifest(source.manifest);
  } catch (error) {
    manifestError = error;
  }
  const manifest = checked && servedManifest(checked);
  // The full manifest and the bytes, until load() hands them over: `load` must not close over
  // `source`, or the model would keep them for as long as it serves.
  let pending = checked && { checked, source };
  let loading: Promise<OpenModel> | undefined;
  let holders = 0;
  let retired = false;
  let released = false;
  const releaseWhenUnused = () => {
    if (!retired || holders > 0 || released) return;
    released = true;
    pending = undefined;
    // A load that failed released its session itself.
    loading?.then(
      (open) =>
        open.close().then(
          () => logLine("info", "model.released", { model: manifest?.id, version: manifest?.version }),
          (error) =>
            logLine("error", "model.release_failed", { model: manifest?.id, error: describeError(error) }),
        ),
      () => undefined,
    );
  };
  return {
    manifest,
    load() {
      if (released)
        return Promise.reject(new Error(`model ${manifest?.id} was retired and its session released`));
      // A failure is cached too: the bundled bytes do not change, and retrying would spend
      // the start-up cost again on every request.
      loading ??= pending
        ? loadModel(pending.checked, manifest!, pending.source)
        : Promise.reject(manifestError);
      pending = undefined;
      return loading;
    },
    hold() {
      holders++;
      let held = true;
      return () => {
        if (!held) return;
        held = false;
        holders--;
        releaseWhenUnused();
      };
    },
    retire() {
      retired = true;
      releaseWhenUnused();
    },
  };
}

/**
 * Opens the factorised graph when there is one, else (or when it is refused) the plain graph, and
 * makes the trial runs on the graph that will serve: a factorised graph whose trial run fails
 * leaves the plain graph serving, as one that does not load does.
 */
async function loadModel(
  checked: ModelManifest,
  manifest: ServedManifest,
  source: ModelSource,
): Promise<OpenModel> {
  // The encoder reads nothing of the state once compiled; it keeps the layout in its place.
  const encoder: Encoder<EncoderLayout> = { ...compileEncoder(checked.features), state: manifest.features };
  const runs = source.warmUpRuns ?? WARM_UP_RUNS;
  // Encoded only once a graph's declared widths have matched the manifest's (openGraph): the
  // batch is rows × denseSize, whatever the manifest says denseSize is.
  let batch: EncodedBatch | undefined;
  const tried = async (open: OpenModel): Promise<OpenModel> => {
    try {
      // The warm-up request samples the vocabularies, which only the full manifest has.
      if (!batch) {
        const request = warmUpRequest(checked.features);
        batch = encoder.encodeRequest(
          { user: request.user.features, context: request.context.features },
          request.candidates.map((c) => c.features),
        );
      }
      for (let i = 0; i < runs; i++) await open.predict(batch);
      return open;
    } catch (error) {
      await open.close().catch(() => undefined);
      throw error;
    }
  };
  if (manifest.factorised && source.factorised) {
    try {
      const plan = factorisedFeeds(manifest, manifest.factorised);
      const file = source.factorisedFile ?? manifest.factorised.file;
      const session = await openGraph(source.factorised, plan, manifest, file);
      return await tried({ manifest, encoder, graph: "factorised", ...predictor(session, plan, manifest) });
    } catch (error) {
      // The plain graph gives the same scores, only slower: serve it rather than fall back.
      logLine("error", "model.factorised_rejected", { model: manifest.id, error: describeError(error) });
    }
  }
  const plan = plainFeeds(manifest);
  const session = await openGraph(source.model, plan, manifest, source.modelFile ?? "model.onnx");
  return tried({ manifest, encoder, graph: "plain", ...predictor(session, plan, manifest) });
}

function predictor(
  session: Session,
  plan: FeedPlan,
  manifest: ServedManifest,
): Pick<OpenModel, "predict" | "close"> {
  const { run, idle } = serialize(session);
  return {
    async predict(batch) {
      const results = await run(plan.build(batch));
      const heads: Record<string, Float32Array> = {};
      for (const head of manifest.heads)
        heads[head.name] = headValues(results[head.output], head.name, batch.rows);
      return heads;
    },
    close: () => idle().then(() => session.release()),
  };
}

/**
 * A session whose graph takes the inputs the plan feeds and gives the outputs the manifest names.
 * Before onnxruntime reads the graph, its operators, domains, subgraphs, external data, opset
 * and node count are checked against what the exporter writes (graph-ops.ts).
 */
async function openGraph(
  bytes: ArrayBuffer,
  plan: FeedPlan,
  manifest: ServedManifest,
  file: string,
): Promise<Session> {
  checkGraphOps(bytes, file);
  const session = await createSession(bytes);
  try {
    const names = plan.inputs.map((input) => input.name);
    for (const name of names)
      if (!session.inputNames.includes(name)) throw new Error(`${file} has no input "${name}"`);
    for (const name of session.inputNames)
      if (!names.includes(name)) throw new Error(`${file} has an input "${name}" the manifest does not name`);
    for (const head of manifest.heads)
      if (!session.outputNames.includes(head.output))
        throw new Error(`${file} has no output "${head.output}"`);
    checkInputShapes(session, plan.inputs, file);
  } catch (error) {
    await session.release().catch(() => undefined);
    throw error;
  }
  return session;
}

/**
 * Each input's element type and width, as the graph declares them, must be what the manifest
 * makes the worker feed. Checked before the trial run: it encodes 200 rows of the manifest's
 * widths in JS and onnxruntime copies them into wasm memory (which never shrinks) before it
 * compares shapes: a manifest saying `denseSize` 2^18 would grow the isolate by ~200 MiB.
 */
function checkInputShapes(session: Session, inputs: readonly GraphInput[], file: string): void {
  // Metadata some builds of onnxruntime-web do not give: then the trial run checks alone.
  const declared = (session as { inputMetadata?: readonly InferenceSession.ValueMetadata[] }).inputMetadata;
  if (!declared) return;
  for (const input of inputs) {
    const meta = declared.find((m) => m.name === input.name);
    if (!meta) continue;
    const expected = `${input.type} rows of ${input.width}`;
    if (!meta.isTensor)
      throw new Error(`${file}: input "${input.name}" is not a tensor; the manifest feeds ${expected}`);
    const [, width] = meta.shape;
    if (meta.type !== input.type || meta.shape.length !== 2 || width !== input.width)
      throw new Error(
        `${file}: input "${input.name}" is ${meta.type} [${meta.shape.join(", ")}]; the manifest feeds ${expected}`,
      );
  }
}

function headValues(tensor: Tensor | undefined, head: string, rows: number): Float32Array {
  if (!tensor || tensor.type !== "float32" || tensor.data.length !== rows)
    throw new Error(`head "${head}": expected float32 [${rows}, 1], got ${tensor?.type} [${tensor?.dims}]`);
  const values = tensor.data as Float32Array;
  for (const x of values) if (!Number.isFinite(x)) throw new Error(`head "${head}": non-finite output ${x}`);
  return values;
}

/**
 * One run at a time per session: concurrent requests in an isolate queue instead of interleaving.
 * `idle` settles once every run queued so far has.
 */
function serialize(session: Session): {
  run: (feeds: Feeds) => Promise<RunResult>;
  idle: () => Promise<unknown>;
} {
  let queue: Promise<unknown> = Promise.resolve();
  return {
    run(feeds) {
      const run = queue.then(() => session.run(feeds));
      queue = run.catch(() => undefined);
      return run;
    },
    idle: () => queue,
  };
}
