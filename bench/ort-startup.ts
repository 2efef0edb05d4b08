/**
 * Where onnxruntime-web's start-up goes, in Node with the worker's recipe (docs/notes/ort-web-in-workerd.md):
 * the wasm binary compiled beforehand (wrangler does it at deploy), then instantiated through the
 * worker's own marker swap (edge/runtime/precompiled-wasm.ts). Phases: compile, runtime + a
 * one-node session (ORT's own initialisation: schema and kernel registration, run as freshly compiled wasm), the model's
 * session, its first run, and a second session and run for comparison. One fresh process per
 * setting; run it under `node --no-wasm-lazy-compilation --import tsx` to see how much of the
 * runtime phase is V8 compiling wasm functions on first call.
 *
 * The model directory comes from `npm run bench:edge -- --model default` (or any exported model).
 * `--snapshot off` runs ORT's own initialisation instead of restoring the worker's snapshot
 * (edge/runtime/ort-snapshot.ts); run one process each way to compare.
 *
 *   tsx bench/ort-startup.ts [--model out/bench/edge-model-default] [--file model.factorised.int8.onnx]
 *     [--level all|basic|disabled] [--snapshot on|off]
 */
import { readFile } from "node:fs/promises";
import * as ort from "onnxruntime-web/wasm";
import { ortSnapshotUse, usePrecompiledWasm } from "../edge/runtime/precompiled-wasm.ts";
import { compileOrtWasm, readOrtSnapshot } from "../scripts/ort-snapshot-build.ts";
import { compileEncoder } from "../shared/encoder/encode.ts";
import type { ModelManifest } from "../shared/manifest.ts";
import { encodeBody, requestBody } from "../test/fixtures/request-body.ts";
import { factorisedFeeds, plainFeeds } from "../trainer/export/onnx-session.ts";
import { choiceFlag, machineInfo, stringFlag } from "./timing.ts";

const argv = process.argv.slice(2);
const dir = stringFlag(argv, "--model", "out/bench/edge-model-default");
const file = stringFlag(argv, "--file", "model.factorised.int8.onnx");
const level = choiceFlag(argv, "--level", ["all", "basic", "disabled"]);
const snapshotFlag = choiceFlag(argv, "--snapshot", ["on", "off"]);

const timed = async <T>(work: () => Promise<T>): Promise<[T, number]> => {
  const started = performance.now();
  const value = await work();
  return [value, performance.now() - started];
};

const [compiled, compileMs] = await timed(compileOrtWasm);
usePrecompiledWasm(compiled, snapshotFlag === "on" ? await readOrtSnapshot() : undefined);

const options = { executionProviders: ["wasm"], graphOptimizationLevel: level } as const;
const manifestText = await readFile(`${dir}/manifest.json`, "utf8").catch(() => {
  throw new Error(
    `--model: ${dir} has no manifest.json (npm run bench:edge -- --model default builds out/bench/edge-model-default)`,
  );
});
const manifest = JSON.parse(manifestText) as ModelManifest;
const modelBytes = new Uint8Array(await readFile(`${dir}/${file}`));
const tiny = new Uint8Array(await readFile("fixtures/model/model.onnx"));
const batch = encodeBody(compileEncoder(manifest.features), requestBody(manifest.features, 200, 7));
const feeds = file.includes("factorised")
  ? factorisedFeeds({ features: manifest.features, factorised: manifest.factorised! }, batch, ort.Tensor)
  : plainFeeds(manifest, batch, ort.Tensor);

const [, runtimeMs] = await timed(() => ort.InferenceSession.create(tiny, options));
const [session, sessionMs] = await timed(() => ort.InferenceSession.create(modelBytes, options));
const [, firstRunMs] = await timed(() => session.run(feeds));
const [again, secondSessionMs] = await timed(() => ort.InferenceSession.create(modelBytes, options));
const [, secondRunMs] = await timed(() => again.run(feeds));

const phases = { compileMs, runtimeMs, sessionMs, firstRunMs, secondSessionMs, secondRunMs };
console.log(
  JSON.stringify({
    model: `${dir}/${file}`,
    level,
    ortSnapshot: ortSnapshotUse(),
    flags: process.execArgv,
    machine: machineInfo(),
    phases,
  }),
);
console.log(
  Object.entries(phases)
    .map(([k, v]) => `${k.replace(/Ms$/, "")} ${v.toFixed(0)} ms`)
    .join(" | "),
);
