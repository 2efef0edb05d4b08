/**
 * Picks the fastest TensorFlow.js backend present at run time, fastest first: a GPU through
 * WebGPU on Dawn (./webgpu-backend.ts; the packages are optional dependencies), tfjs-node-gpu,
 * tfjs-node (native, optional extras: they cannot install on every host), the WebAssembly backend
 * (XNNPACK, ~6x the pure-JS backend on dense layers), else the pure-JS cpu backend.
 *
 *   selectBackend()          auto: the first of webgpu (a hardware adapter only) -> tensorflow
 *                            (native) -> wasm -> cpu that starts
 *   selectBackend("webgpu")  any WebGPU adapter, a software one (lavapipe) included; with none,
 *                            one line on stderr saying why and what to install, then wasm
 *   selectBackend("wasm")    that backend or an error naming it
 *
 * The adapter webgpu runs on is logged on stderr in one line (vendor, architecture, device,
 * description). Under vitest (process.env.VITEST) auto never looks for a GPU, so the unit suite
 * trains on the same backends on every host; test:gpu asks for webgpu by name.
 *
 * Every backend it returns can train the network: the kernels the network needs and a backend
 * lacks (wasm has no UnsortedSegmentSum) are registered here (./segment-sum-kernel.ts), and the
 * wasm backend's matrix products (every dense layer, forward and both gradients) run in the
 * project's own WebAssembly SIMD kernels (./wasm-matmul-kernel.ts, ./wasm-kernels.ts).
 */
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { registerFastSegmentSum } from "./segment-sum-kernel.ts";
import { registerWasmLayoutKernels } from "./wasm-layout-kernels.ts";
import { registerWasmMatMul } from "./wasm-matmul-kernel.ts";
import { adapterLine, startWebGpu } from "./webgpu-backend.ts";

export const BACKEND_CHOICES = ["auto", "webgpu", "tensorflow", "wasm", "cpu"] as const;

const NATIVE_PACKAGES = ["@tensorflow/tfjs-node-gpu", "@tensorflow/tfjs-node"];
const WASM_PACKAGE = "@tensorflow/tfjs-backend-wasm";

export async function selectBackend(preferred?: string): Promise<string> {
  const want = preferred ?? "auto";
  if (want === "auto") {
    if (!process.env.VITEST && (await startGpu(false))) return finish("webgpu");
    if (await startNative()) return finish("tensorflow");
    if (await startWasm()) return finish("wasm");
    return finish(await start("cpu"));
  }
  if (want === "webgpu") {
    if (await startGpu(true)) return finish("webgpu");
    if (await startWasm()) return finish("wasm");
    return finish(await start("cpu"));
  }
  if (want === "tensorflow") {
    if (await startNative()) return finish("tensorflow");
    throw new Error(
      `--backend: backend "tensorflow" is not available (install ${NATIVE_PACKAGES.join(" or ")})`,
    );
  }
  if (want === "wasm") {
    if (await startWasm()) return finish("wasm");
    throw new Error(`--backend: backend "wasm" is not available (${WASM_PACKAGE} did not load)`);
  }
  return finish(await start(want));
}

async function start(name: string): Promise<string> {
  if (!(await tf.setBackend(name))) throw new Error(`--backend: backend "${name}" is not available`);
  return name;
}

async function startNative(): Promise<boolean> {
  for (const pkg of NATIVE_PACKAGES) {
    try {
      await import(/* @vite-ignore */ pkg);
      if (await tf.setBackend("tensorflow")) return true;
    } catch {
      // Not installed on this host: fall through to the next candidate.
    }
  }
  return false;
}

/** Starts webgpu and logs its adapter; asked for by name (software allowed), says why not. */
async function startGpu(software: boolean): Promise<boolean> {
  const gpu = await startWebGpu({ software });
  if (gpu.ok) {
    console.error(`backend webgpu on ${adapterLine(gpu.adapter)}`);
    return true;
  }
  if (software) console.error(`--backend webgpu: ${gpu.reason}; training on wasm instead`);
  return false;
}

let wasmLoaded: Promise<boolean> | null = null;

/**
 * Loads the wasm backend package once (importing it registers the backend "wasm"; it is imported
 * only here, so a process that never asks for wasm keeps cpu as its default), points it at its
 * .wasm binaries in node_modules, and switches to it.
 */
async function startWasm(): Promise<boolean> {
  wasmLoaded ??= (async () => {
    try {
      // A literal specifier, so a bundler (scripts/bundle-gpu.ts) includes the package with the
      // one tfjs-core the rest of the bundle uses; bundled, a CommonJS package's exports may sit
      // under `default` only.
      type WasmModule = { setWasmPaths(prefix: string): void };
      const imported = (await import("@tensorflow/tfjs-backend-wasm")) as Partial<WasmModule> & {
        default?: WasmModule;
      };
      const wasm = imported.setWasmPaths ? (imported as WasmModule) : imported.default!;
      const require = createRequire(import.meta.url);
      wasm.setWasmPaths(`${join(dirname(require.resolve(`${WASM_PACKAGE}/package.json`)), "dist")}/`);
      return true;
    } catch {
      return false;
    }
  })();
  if (!(await wasmLoaded)) return false;
  try {
    return await tf.setBackend("wasm");
  } catch {
    return false;
  }
}

async function finish(name: string): Promise<string> {
  await tf.ready();
  // The cpu backend prints a multi-line "install tfjs-node" banner on first use; the choice is
  // logged by the caller instead, so mark the banner as shown.
  const backend = tf.backend() as { firstUse?: boolean };
  if ("firstUse" in backend) backend.firstUse = false;
  registerFastSegmentSum(name);
  if (name === "wasm") {
    registerWasmLayoutKernels();
    registerWasmMatMul();
  }
  return name;
}
