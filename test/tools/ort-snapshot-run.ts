/**
 * One fresh onnxruntime-web per process, the worker's recipe (precompiled wasm, one thread),
 * started from the snapshot file given or ("none") initialising itself; scores the first
 * request of fixtures/model/requests.json and prints {use, outputs} as JSON. For
 * test/runtime/ort-snapshot.test.ts, which compares the two.
 *
 *   tsx test/tools/ort-snapshot-run.ts <snapshot file | none>
 */
import { readFile } from "node:fs/promises";
import * as ort from "onnxruntime-web/wasm";
import { ortSnapshotUse, usePrecompiledWasm } from "../../edge/runtime/precompiled-wasm.ts";
import { compileOrtWasm, readOrtSnapshot } from "../../scripts/ort-snapshot-build.ts";
import { compileEncoder } from "../../shared/encoder/encode.ts";
import type { ModelManifest } from "../../shared/manifest.ts";
import { plainFeeds } from "../../trainer/export/onnx-session.ts";

const file = process.argv[2] ?? "none";
usePrecompiledWasm(await compileOrtWasm(), file === "none" ? undefined : await readOrtSnapshot(file));
const manifest = JSON.parse(await readFile("fixtures/model/manifest.json", "utf8")) as ModelManifest;
const [request] = JSON.parse(await readFile("fixtures/model/requests.json", "utf8")) as {
  user: { features: Record<string, string> };
  context: { features: Record<string, string> };
  candidates: { features: Record<string, string> }[];
}[];
const batch = compileEncoder(manifest.features).encodeRequest(
  { user: request!.user.features, context: request!.context.features },
  request!.candidates.map((c) => c.features),
);
const session = await ort.InferenceSession.create(
  new Uint8Array(await readFile("fixtures/model/model.onnx")),
);
const results = await session.run(plainFeeds(manifest, batch, ort.Tensor));
const outputs = Object.fromEntries(
  Object.entries(results).map(([name, tensor]) => [name, Array.from(tensor.data as Float32Array)]),
);
console.log(JSON.stringify({ use: ortSnapshotUse(), outputs }));
