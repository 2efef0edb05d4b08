/**
 * Three test projects: "node" (trainer, shared code, export, the ORT runtime's Node side), "workers" (test/edge, run inside
 * workerd by @cloudflare/vitest-pool-workers with the worker's own wrangler.toml), and "wrangler-dev" (the pipeline's
 * faults against a real `wrangler dev`), which runs alone after the other two.
 *   npx vitest run --project workers
 */
import { fileURLToPath } from "node:url";
import { cloudflareTest } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";

/**
 * edge/runtime/ort.ts imports ORT's wasm by its file path, which wrangler's module rules need but
 * the package's "exports" map does not list; Vite honours "exports", so point it at the file.
 */
const ORT_WASM = "onnxruntime-web/dist/ort-wasm-simd-threaded.wasm";
const ortWasmFile = fileURLToPath(new URL(`./node_modules/${ORT_WASM}`, import.meta.url));

/** The pipeline's fault cases against a real `wrangler dev` (see the "wrangler-dev" project). */
const WRANGLER_DEV_FILE = "test/pipeline/e2e-wrangler.test.ts";

export default defineConfig({
  test: {
    // The worker logs one JSON line per request (edge/http/request-log.ts); thousands of edge
    // test requests would bury the report. Tests that check the lines spy on console.log.
    onConsoleLog: (log) => !log.includes('"event":"request"'),
    projects: [
      {
        test: {
          name: "node",
          environment: "node",
          sequence: { groupOrder: 0 },
          include: [
            "test/trainer/**/*.test.ts",
            "test/shared/**/*.test.ts",
            "test/export/**/*.test.ts",
            "test/runtime/**/*.test.ts",
            "test/openapi/**/*.test.ts",
            "test/package/**/*.test.ts",
            "test/pipeline/**/*.test.ts",
          ],
          exclude: [WRANGLER_DEV_FILE],
        },
      },
      {
        test: {
          name: "wrangler-dev",
          environment: "node",
          include: [WRANGLER_DEV_FILE],
          // Two workerd processes (wrangler dev's and the local registry's) over one SQLite state,
          // with fault cases timed in seconds: among the suite's other workerd and training
          // processes on a 2-core host, a case stalled past its 120 s limit in two full runs
          // (never alone, nor alone beside two busy cores). It runs once the others are done.
          sequence: { groupOrder: 1 },
        },
      },
      {
        plugins: [
          cloudflareTest({
            wrangler: { configPath: "./wrangler.toml" },
            // Local R2/KV for test/edge/model-store.test.ts, under names the worker does not read,
            // so the tests hand them to their own apps and the main worker keeps its bundled model.
            miniflare: { r2Buckets: ["TEST_MODELS"], kvNamespaces: ["TEST_POINTERS"] },
          }),
        ],
        resolve: { alias: [{ find: ORT_WASM, replacement: ortWasmFile }] },
        test: {
          name: "workers",
          include: ["test/edge/**/*.test.ts"],
          sequence: { groupOrder: 0 },
          // One module graph for all edge test files: loading ORT's 14 MB wasm through the pool's
          // module fallback takes 9-20 s, so it should happen once per run, not once per file.
          isolate: false,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
