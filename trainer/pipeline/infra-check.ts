/**
 * The gate's infra check: each graph of a model directory (model.onnx, model.int8.onnx) is read
 * as the worker reads an R2 model (edge/model/remote.ts: the worker's size caps, each file's byte
 * count and sha256 against the manifest), loads in onnxruntime-web and answers a fixed request
 * through the worker's own code, the request
 * parser (edge/rerank/schema.ts), servingModel's load with its warm-up run
 * (edge/model/serving-model.ts) and encode → infer → fuse (edge/rerank/rank.ts rankCandidates).
 * A graph that ORT's wasm build or the worker's feed plan refuses is caught here, before it is
 * published, instead of by every request falling back.
 *
 * It runs in a child Node process (./infra-check-child.ts) for two reasons: the worker's ORT
 * module (edge/runtime/ort.ts) imports its wasm and snapshot the way wrangler bundles them,
 * which the child maps with module hooks; and it sets up onnxruntime-web once per isolate (one
 * thread, precompiled wasm, the snapshot), which a fresh process gets as a fresh isolate would,
 * without touching the ORT the trainer's own evaluation uses in this process.
 */
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

/** One graph's outcome. */
export interface GraphCheck {
  file: string;
  passed: boolean;
  /** What went wrong, or what it answered ("20 items, top item-3 score 0.41"). */
  detail: string;
  /** Load (session + warm-up) and the request, in milliseconds. */
  loadMs?: number;
  requestMs?: number;
  /** Whether ORT started from the bundled snapshot, as in the worker ("applied"). */
  snapshot?: string;
}

export interface InfraCheckResult {
  passed: boolean;
  /** One line for the gate and the record. */
  detail: string;
  graphs: GraphCheck[];
}

/**
 * The size caps of the worker that will serve the model: what it refuses to download from R2 is
 * never published. Default: the worker's defaults (its MTRANK_MANIFEST_MAX_BYTES and
 * MTRANK_MODEL_MAX_BYTES unset).
 */
export interface WorkerCaps {
  /** Largest manifest.json (default 8 MiB, edge/model/remote.ts DEFAULT_MANIFEST_MAX_BYTES). */
  maxManifestBytes?: number;
  /** Largest graph (default 12 MiB, edge/model/remote.ts DEFAULT_MODEL_MAX_BYTES). */
  maxModelBytes?: number;
}

export interface InfraCheckOptions {
  /** Graph files to check (default: model.onnx and model.int8.onnx where the manifest lists it). */
  files?: string[];
  /** The serving worker's size caps (default: its defaults). */
  caps?: WorkerCaps;
  /** The child gets this long before it is killed (default 120 s: the wasm compiles first). */
  timeoutMs?: number;
}

const CHILD = fileURLToPath(new URL("./infra-check-child.ts", import.meta.url));

/** Checks the model directory's graphs; never throws: a crash is a failed check. */
export async function infraCheck(
  modelDir: string,
  options: InfraCheckOptions = {},
): Promise<InfraCheckResult> {
  const scratch = await mkdtemp(join(tmpdir(), "mtrank-infra-"));
  const out = join(scratch, "result.json");
  try {
    const args = [modelDir, out, JSON.stringify(options.caps ?? {}), ...(options.files ?? [])];
    const run = await runChild(args, options.timeoutMs ?? 120_000);
    let graphs: GraphCheck[];
    try {
      graphs = JSON.parse(await readFile(out, "utf8")) as GraphCheck[];
    } catch {
      const why = run.timedOut ? "timed out" : `exited with ${run.code}`;
      const last = run.stderr.trim().split("\n").filter(Boolean).at(-1) ?? "no output";
      return { passed: false, detail: `infra check ${why}: ${last}`, graphs: [] };
    }
    const failed = graphs.filter((g) => !g.passed);
    const passed = graphs.length > 0 && failed.length === 0;
    const detail =
      graphs.length === 0
        ? "no graph to check"
        : passed
          ? graphs.map((g) => `${g.file}: ${g.detail}`).join("; ")
          : failed.map((g) => `${g.file}: ${g.detail}`).join("; ");
    return { passed, detail, graphs };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

interface ChildRun {
  code: number | null;
  timedOut: boolean;
  stderr: string;
}

function runChild(args: string[], timeoutMs: number): Promise<ChildRun> {
  // tsx's loader, resolved from this package (an installed mtrank has tsx as a dependency).
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
  return new Promise((resolvePromise) => {
    const child = spawn(process.execPath, ["--import", tsx, CHILD, ...args], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk: string) => {
      // Bounded: only the last lines matter for the one-line detail.
      stderr = (stderr + chunk).slice(-8192);
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolvePromise({ code, timedOut, stderr });
    });
    child.on("error", (error) => {
      clearTimeout(timer);
      resolvePromise({ code: null, timedOut, stderr: `${stderr}\n${error.message}` });
    });
  });
}
