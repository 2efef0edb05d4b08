/**
 * The infra check's child process (./infra-check.ts starts it):
 *
 *   node --import tsx trainer/pipeline/infra-check-child.ts MODEL_DIR RESULT_JSON [FILE ...]
 *
 * Maps the two imports that edge/runtime/ort.ts makes the wrangler way (the wasm binary as a
 * compiled WebAssembly.Module, the ORT snapshot as an ArrayBuffer) onto Node, then runs each
 * graph through the worker's own modules and writes GraphCheck[] as JSON to RESULT_JSON.
 * stdout is the worker's log (one JSON line per event); errors that stop the child go to stderr.
 */
import { readFile, writeFile } from "node:fs/promises";
import { registerHooks } from "node:module";
import { join } from "node:path";
import type { ModelManifest } from "../../shared/manifest.ts";
import { fixedRequest } from "./fixed-request.ts";
import type { GraphCheck } from "./infra-check.ts";

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
const { ServerTiming } = await import("../../edge/http/server-timing.ts");
const { ortSnapshotUse } = await import("../../edge/runtime/ort.ts");

const [dir, out, ...named] = process.argv.slice(2);
if (!dir || !out) {
  process.stderr.write("usage: infra-check-child.ts MODEL_DIR RESULT_JSON [FILE ...]\n");
  process.exit(2);
}

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
    const bytes = await readFile(join(dir!, file));
    // The manifest goes through the worker's own parser (servingModel), as an R2 model's does.
    const model = servingModel({
      manifest: manifestJson,
      model: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength),
    });
    if (!model.manifest) await model.load(); // rejects with the manifest's error
    const loaded = await model.load();
    const loadMs = performance.now() - started;
    const manifest = loaded.manifest;
    const body = fixedRequest(manifest);
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
    return {
      file,
      passed: false,
      detail: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
      loadMs: performance.now() - started,
    };
  }
}
