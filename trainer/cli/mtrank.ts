/**
 * mtrank <command> [options]: one entry for the verbs (bin/mtrank.js runs it; `npm run train`
 * and the other scripts run the same modules directly).
 *
 * Each verb module parses process.argv when imported, so the dispatcher drops the verb from argv
 * and imports only that module: `mtrank --help` and a mistyped verb answer without loading
 * TensorFlow.js.
 */
import { readFileSync } from "node:fs";

interface Verb {
  summary: string;
  load: () => Promise<unknown>;
}

const VERBS = new Map<string, Verb>([
  [
    "simulate",
    {
      summary: "write a simulated recommendation log (data.csv + spec.json) with ground truth",
      load: () => import("./simulate.ts"),
    },
  ],
  [
    "train",
    {
      summary: "train a multi-task ranking network and export it (model.onnx + manifest.json)",
      load: () => import("./train.ts"),
    },
  ],
  [
    "evaluate",
    {
      summary: "per-task metrics of an exported model, run by onnxruntime as the worker runs it",
      load: () => import("./evaluate.ts"),
    },
  ],
  [
    "predict",
    {
      summary: "score every row of a data file with an exported model (CSV, one column per head)",
      load: () => import("./predict.ts"),
    },
  ],
  [
    "export",
    {
      summary: "write model.onnx (and int8 or factorised graphs) and manifest.json from a trained model",
      load: () => import("./export.ts"),
    },
  ],
  [
    "cv",
    {
      summary: "k-fold cross-validation: each task metric as mean ± std over the folds",
      load: () => import("./cv.ts"),
    },
  ],
  [
    "compress",
    {
      summary: "prune a trained model, or distil it into a smaller student",
      load: () => import("./compress.ts"),
    },
  ],
  [
    "serve",
    {
      summary: "serve a model directory with wrangler dev (needs wrangler)",
      load: () => import("./serve.ts"),
    },
  ],
  [
    "demo",
    {
      summary: "simulate, train, export, serve with wrangler dev, rerank one request (needs wrangler)",
      load: () => import("./demo.ts"),
    },
  ],
  ["pipeline", { summary: "retrain, gate and publish a model nightly", load: () => import("./pipeline.ts") }],
]);

function usage(): string {
  const width = Math.max(...[...VERBS.keys()].map((v) => v.length));
  return [
    "Usage: mtrank <command> [options]",
    "",
    "Multi-task ranking networks: train in Node, export to ONNX, serve from a Cloudflare Worker.",
    "",
    "Commands:",
    ...[...VERBS].map(([name, verb]) => `  ${name.padEnd(width)}  ${verb.summary}`),
    "",
    "mtrank <command> --help shows a command's options; mtrank --version the package version.",
    "",
  ].join("\n");
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
    version: string;
  };
  return pkg.version;
}

const [first, ...rest] = process.argv.slice(2);
let name = first;
let args = rest;
if (first === "help" && rest.length > 0) {
  // `mtrank help train` is `mtrank train --help`.
  name = rest[0];
  args = ["--help"];
}

if (name === undefined) {
  process.stderr.write(usage());
  process.exitCode = 1;
} else if (name === "--help" || name === "-h" || name === "help") {
  process.stdout.write(usage());
} else if (name === "--version" || name === "-V") {
  process.stdout.write(`${version()}\n`);
} else {
  const verb = VERBS.get(name);
  if (!verb) {
    process.stderr.write(
      `mtrank: unknown command "${name}" (commands: ${[...VERBS.keys()].join(", ")}; see mtrank --help)\n`,
    );
    process.exitCode = 1;
  } else {
    // The verb's parser reads argv from index 2: keep node and the script, drop the verb.
    process.argv = [process.argv[0]!, process.argv[1]!, ...args];
    await verb.load();
  }
}
