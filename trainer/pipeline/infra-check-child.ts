/**
 * The infra check's child process (./infra-check.ts starts it):
 *
 *   node --import tsx trainer/pipeline/infra-check-child.ts MODEL_DIR RESULT_JSON CAPS_JSON [FILE ...]
 *
 * Maps the two imports that edge/runtime/ort.ts makes the wrangler way (the wasm binary as a
 * compiled WebAssembly.Module, the ORT snapshot as an ArrayBuffer) onto Node, then reads each
 * graph as the worker reads an R2 model (edge/model/remote.ts fetchRemoteModel over the model
 * directory: the size caps of CAPS_JSON, every file's byte count and sha256 against the
 * manifest), runs it through the worker's own modules and writes GraphCheck[] as JSON to
 * RESULT_JSON.
 * stdout is the worker's log (one JSON line per event); errors that stop the child go to stderr.
 */
import { readFile, stat, writeFile } from "node:fs/promises";
import { registerHooks } from "node:module";
import { join } from "node:path";
import type { R2BucketReader } from "../../edge/env.ts";
import type { ModelManifest } from "../../shared/manifest.ts";
import { fixedRequest } from "./fixed-request.ts";
import type { GraphCheck, WorkerCaps } from "./infra-check.ts";

const ORT_WASM = "onnxruntime-web/dist/ort-wasm-simd-threaded.wasm";

registerHooks({
  resolve(specifier, context, next) {
    // The file wrangler's rule compiles; the package's exports map lists it under another path.
    if (specifier === ORT_WASM) return next("onnxruntime-web/ort-wasm-simd-threaded.wasm", context);
    return next(specifier, context);
  },
  load(url, context, next) {
    if (url.endsWith("/ort-wasm-simd-threaded.wasm"))
      return {
        format: "module",
        shortCircuit: true,
        source: `import { readFileSync } from "node:fs";
export default new WebAssembly.Module(readFileSync(new URL(${JSON.stringify(url)})));`,
      };
    if (url.endsWith("/ort-snapshot.bin"))
      // A missing snapshot (not built) reads as empty: the worker's code logs it and ORT
      // initialises itself, costing start-up time only, as in the worker.
      return {
        format: "module",
        shortCircuit: true,
        source: `import { readFileSync } from "node:fs";
let bytes = new Uint8Array(0);
try { bytes = readFileSync(new URL(${JSON.stringify(url)})); } catch {}
export default bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);`,
      };
    return next(url, context);
  },
});

// After the hooks: these import edge/runtime/ort.ts.
const { servingModel } = await import("../../edge/model/serving-model.ts");
const { rankCandidates, resolveFusion, uniqueCandidates } = await import("../../edge/rerank/rank.ts");
const { rerankRequestParser } = await import("../../edge/rerank/schema.ts");
const { arrange } = await import("../../edge/rerank/arrange.ts");
const { fetchRemoteModel, MODEL_FILES } = await import("../../edge/model/remote.ts");
const { ServerTiming } = await import("../../edge/http/server-timing.ts");
const { ortSnapshotUse } = await import("../../edge/runtime/ort.ts");

const [dir, out, capsJson, ...named] = process.argv.slice(2);
if (!dir || !out || !capsJson) {
  process.stderr.write("usage: infra-check-child.ts MODEL_DIR RESULT_JSON CAPS_JSON [FILE ...]\n");
  process.exit(2);
}
const caps = JSON.parse(capsJson) as WorkerCaps;

/** The MTRANK_MODEL_WEIGHTS that serves each graph (the worker's own map, turned round). */
const WEIGHTS = new Map(
  Object.entries(MODEL_FILES).map(([weights, file]) => [file, weights as keyof typeof MODEL_FILES]),
);

/** The model directory as the R2 bucket the worker reads, under the prefix PREFIX. */
const PREFIX = "candidate/";
const bucket: R2BucketReader = {
  async get(key) {
    if (!key.startsWith(PREFIX)) return null;
    const path = join(dir, key.slice(PREFIX.length));
    const size = await stat(path).then(
      (s) => s.size,
      () => null,
    );
    if (size === null) return null;
    return {
      size,
      text: () => readFile(path, "utf8"),
      arrayBuffer: async () => {
        const bytes = await readFile(path);
        return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
      },
    };
  },
};

const manifestJson: unknown = JSON.parse(await readFile(join(dir, "manifest.json"), "utf8"));
const listed = (manifestJson as Partial<ModelManifest>).files ?? {};
const files =
  named.length > 0 ? named : ["model.onnx", ...("model.int8.onnx" in listed ? ["model.int8.onnx"] : [])];

const results: GraphCheck[] = [];
for (const file of files) results.push(await checkGraph(file));
await writeFile(out, JSON.stringify(results));

async function checkGraph(file: string): Promise<GraphCheck> {
  const started = performance.now();
  try {
    const weights = WEIGHTS.get(file);
    if (!weights) throw new Error("not a graph the worker serves (model.onnx or model.int8.onnx)");
    // Read as the worker reads an R2 model: caps, byte counts and sha256 against the manifest;
    // then the manifest goes through the worker's own parser (servingModel).
    const source = await fetchRemoteModel(bucket, PREFIX, { weights, ...caps });
    const model = servingModel(source);
    if (!model.manifest) await model.load(); // rejects with the manifest's error
    const loaded = await model.load();
    const loadMs = performance.now() - started;
    const manifest = loaded.manifest;
    // The served manifest has no vocabularies to sample (servedManifest): the request is built
    // from the one fetched, which servingModel has just checked.
    const body = fixedRequest(source.manifest as ModelManifest);
    const t0 = performance.now();
    const parsed = rerankRequestParser(manifest.heads.map((h) => h.name))(body);
    if (!parsed.success) throw new Error(`the fixed request does not validate: ${parsed.issues[0]?.message}`);
    const request = parsed.output;
    const candidates = uniqueCandidates(request.candidates);
    const items = await rankCandidates(
      loaded,
      request,
      candidates,
      resolveFusion(request, manifest.fusion.defaults),
      new ServerTiming(),
      (order) => arrange(order, candidates, request.pinned, request.topK),
    );
    const requestMs = performance.now() - t0;
    const ids = new Set(items.map((i) => i.id));
    if (items.length !== candidates.length || ids.size !== candidates.length)
      throw new Error(
        `answered ${items.length} items (${ids.size} distinct) for ${candidates.length} candidates`,
      );
    for (const item of items)
      for (const head of manifest.heads)
        if (!Number.isFinite(item.heads[head.name]))
          throw new Error(`item ${item.id}: head ${head.name} is ${item.heads[head.name]}`);
    const top = items[0]!;
    return {
      file,
      passed: true,
      detail: `${items.length} items, top ${top.id} score ${top.score.toPrecision(4)} (${loaded.graph} graph)`,
      loadMs,
      requestMs,
      snapshot: ortSnapshotUse(),
    };
  } catch (error) {
    const detail = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    return {
      file,
      passed: false,
      detail: /over the \d+-byte cap/.test(detail)
        ? `${detail} (the worker's MTRANK_MANIFEST_MAX_BYTES / MTRANK_MODEL_MAX_BYTES; gate.infra names a deployment's own)`
        : detail,
      loadMs: performance.now() - started,
    };
  }
}
