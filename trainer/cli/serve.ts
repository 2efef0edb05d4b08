/**
 * npm run serve -- DIR (mtrank serve DIR): the worker under `wrangler dev`, serving a model
 * directory instead of the bundled fixture model. It writes a small entry that imports DIR's
 * manifest and graphs the way edge/index.ts imports fixtures/model/ (scripts/dev-config.ts).
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { Command } from "commander";
import { devServerArgs } from "../../scripts/dev-config.ts";
import { positiveInt, runCli } from "./run-cli.ts";

const program = new Command("serve")
  .description("Serve a model directory with wrangler dev (the worker as deployed, on this machine).")
  .argument("<model-dir>", "a model directory written by train / export (manifest.json + model.onnx)")
  .option("--port <n>", "port for wrangler dev", positiveInt, 8787)
  .option("--int8", "serve the int8 graphs (export --int8 writes them)")
  .option("--plain", "serve the plain graph even when the directory has a factorised one")
  .option("--lazy", "load the model on the first request instead of at start-up");

await runCli(async () => {
  program.parse();
  const [modelDir] = program.args as [string];
  const opts = program.opts<{ port: number; int8?: boolean; plain?: boolean; lazy?: boolean }>();
  if (!existsSync(join(modelDir, "manifest.json")))
    throw new Error(`${modelDir}: no manifest.json (train with --out ${modelDir}, or export, first)`);
  const args = devServerArgs(modelDir, opts.port, {
    weights: opts.int8 ? "int8" : "float32",
    graph: opts.plain ? "plain" : "auto",
    load: opts.lazy ? "lazy" : "startup",
  });
  console.log(`wrangler ${args.join(" ")}`);
  await new Promise<void>((resolve, reject) => {
    spawn("npx", ["wrangler", ...args], { stdio: "inherit" })
      .on("error", reject)
      .on("exit", (code) => {
        process.exitCode = code ?? 1;
        resolve();
      });
  });
});
