#!/usr/bin/env node
/**
 * The `mtrank` command. The package ships its TypeScript sources and runs them through tsx (a
 * runtime dependency) instead of compiling them: the worker's bundler (wrangler) reads the same
 * .ts files, the trainer's --workers threads load .ts through tsx anyway
 * (trainer/train/parallel-optimizer.ts), and there is no build output to fall out of step with
 * the sources or to forget before packing. Registering tsx's loader here, in this process, means
 * no global tsx and no second Node process.
 */
import { nodeTooOld } from "./node-version.js";

const tooOld = nodeTooOld(process.versions.node);
if (tooOld) {
  process.stderr.write(`${tooOld}\n`);
  process.exit(1);
}
await import("./register.js");
await import("../trainer/cli/mtrank.ts");
