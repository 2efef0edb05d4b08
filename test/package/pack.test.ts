/**
 * The package as a user gets it: `npm pack`, installed into an empty project, then the `mtrank`
 * command (help, a one-epoch train), the trainer API and a worker built on mtrank/worker.
 * Dependencies come from npm's cache (--prefer-offline) or the registry; about 30 s, most of it
 * the install.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { delimiter, dirname, join, relative } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const run = promisify(execFile);
const ROOT = process.cwd();
const VERBS = ["simulate", "train", "evaluate", "predict", "export", "cv", "compress", "serve", "demo"];

/**
 * A fresh shell's environment: no npm_* variables from an enclosing `npm run` (its config and
 * lifecycle state), and this test's Node first on PATH, so the bin's `#!/usr/bin/env node` runs
 * the same Node as the test.
 */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env))
    if (!key.toLowerCase().startsWith("npm_")) env[key] = value;
  env.PATH = [dirname(process.execPath), process.env.PATH].join(delimiter);
  env.WRANGLER_SEND_METRICS = "false";
  return env;
}

/** Runs a command; a non-zero exit fails with the command and the tail of its output. */
async function sh(cwd: string, file: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await run(file, args, {
      cwd,
      env: cleanEnv(),
      maxBuffer: 64 * 1024 * 1024,
      timeout: 240_000,
    });
    return stdout;
  } catch (error) {
    const e = error as { code?: unknown; stdout?: string; stderr?: string };
    const tail = `${e.stdout ?? ""}\n${e.stderr ?? ""}`.trim().split("\n").slice(-15).join("\n");
    throw new Error(`${file} ${args.join(" ")} (in ${cwd}) failed (${String(e.code)}):\n${tail}`);
  }
}

/** A module specifier or `new URL(...)` starting with ./ or ../ (import, export from, dynamic import). */
const IMPORT = /(?:\bfrom\s*|\bimport\s*\(?\s*|\bnew URL\s*\(\s*)["'](\.\.?\/[^"'`$]+)["']/g;

/** The .ts and .js files under `dir`, skipping dependencies. */
async function sourceFiles(dir: string): Promise<string[]> {
  const files: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory() && entry.name !== "node_modules") files.push(...(await sourceFiles(path)));
    else if (entry.isFile() && /\.(ts|js)$/.test(entry.name)) files.push(path);
  }
  return files;
}

let tmp: string;
let project: string;
let installed: string;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), "mtrank-pack-"));
  const packDir = join(tmp, "pack");
  project = join(tmp, "project");
  await mkdir(packDir);
  await mkdir(project);
  await sh(ROOT, "npm", ["pack", "--pack-destination", packDir]);
  const tarballs = (await readdir(packDir)).filter((f) => f.endsWith(".tgz"));
  expect(tarballs).toHaveLength(1);
  await writeFile(
    join(project, "package.json"),
    `${JSON.stringify({ name: "mtrank-pack-check", private: true, type: "module" }, null, 2)}\n`,
  );
  await sh(project, "npm", [
    "install",
    join(packDir, tarballs[0]!),
    "--no-audit",
    "--no-fund",
    "--prefer-offline",
  ]);
  installed = join(project, "node_modules", "mtrank");
}, 300_000);

afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe("the packed package, installed into an empty project", () => {
  it("carries the sources, the bundled model and the onnxruntime snapshot, not tests or outputs", () => {
    for (const path of [
      "bin/mtrank.js",
      "trainer/index.ts",
      "shared/fusion.ts",
      "edge/app.ts",
      "fixtures/model/model.onnx",
      "edge/runtime/generated/ort-snapshot.bin",
      "wrangler.toml",
      "CHANGELOG.md",
    ])
      expect(existsSync(join(installed, path)), path).toBe(true);
    for (const path of ["test", "out", "bench", "docs"])
      expect(existsSync(join(installed, path)), path).toBe(false);
  });

  it("carries every file its sources import by a relative path", async () => {
    const missing: string[] = [];
    for (const file of await sourceFiles(installed)) {
      const text = await readFile(file, "utf8");
      for (const match of text.matchAll(IMPORT)) {
        const target = join(dirname(file), match[1]!);
        if (!existsSync(target)) missing.push(`${relative(installed, file)} -> ${match[1]}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it("points every export at a file it carries", async () => {
    const pkg = JSON.parse(await readFile(join(installed, "package.json"), "utf8")) as {
      exports: Record<string, string>;
    };
    expect(Object.keys(pkg.exports)).toEqual(
      expect.arrayContaining(["./encoder", "./fusion", "./spec", "./manifest", "./worker", "./trainer"]),
    );
    for (const [subpath, target] of Object.entries(pkg.exports))
      expect(existsSync(join(installed, target)), `${subpath} -> ${target}`).toBe(true);
  });

  it("`npx mtrank --help` lists the commands; an unknown command exits 1 with one line", async () => {
    const help = await sh(project, "npx", ["--no", "--", "mtrank", "--help"]);
    for (const verb of VERBS) expect(help).toMatch(new RegExp(`^  ${verb} `, "m"));
    const failed = sh(project, "npx", ["--no", "--", "mtrank", "retrain"]);
    await expect(failed).rejects.toThrow(/failed \(1\):\nmtrank: unknown command "retrain"/);
  }, 60_000);

  it("simulates, trains one epoch and exports with `npx mtrank`", async () => {
    const mtrank = (...args: string[]) => sh(project, "npx", ["--no", "--", "mtrank", ...args]);
    await mtrank("simulate", "--out", "sim", "--requests", "60", "--users", "50", "--items", "40");
    // A small mmoe: the point is the installed command, not the model.
    const out = await mtrank(
      "train",
      ...["--data", "sim/data.csv", "--spec", "sim/spec.json", "--out", "model"],
      ...["--arch", "mmoe", "--epochs", "1", "--experts", "2", "--expert-sizes", "8", "--tower", "4"],
    );
    expect(out).toMatch(/exported model\/model\.onnx/);
    for (const file of ["manifest.json", "model.onnx"])
      expect(existsSync(join(project, "model", file)), file).toBe(true);
  }, 120_000);

  it("imports the trainer API and fusion under `node --import mtrank/register`", async () => {
    const script = [
      'const fusion = await import("mtrank/fusion");',
      'const trainer = await import("mtrank/trainer");',
      "console.log([fusion.fuseHeads, trainer.runTraining, trainer.exportModelDir].map((f) => typeof f).join(' '));",
    ].join("\n");
    const out = await sh(project, process.execPath, [
      "--import",
      "mtrank/register",
      "--input-type=module",
      "-e",
      script,
    ]);
    expect(out.trim()).toBe("function function function");
  }, 60_000);

  it("builds a worker from mtrank/worker with wrangler (the user's model, the shipped snapshot)", async () => {
    await writeFile(
      join(project, "worker.ts"),
      [
        'import { startApp } from "mtrank/worker";',
        'import manifest from "./model/manifest.json";',
        'import model from "./model/model.onnx";',
        "",
        "export default await startApp({ manifest, model });",
        "",
      ].join("\n"),
    );
    // The rules the package's own wrangler.toml has: models and the snapshot as data, wasm compiled.
    const toml = (await readFile(join(installed, "wrangler.toml"), "utf8")).replace(
      /^main = .*$/m,
      'main = "worker.ts"',
    );
    expect(toml).toContain('main = "worker.ts"');
    await writeFile(join(project, "wrangler.toml"), toml);
    // wrangler is the repository's dev dependency, not the package's.
    const wrangler = join(ROOT, "node_modules", ".bin", "wrangler");
    await sh(project, wrangler, ["deploy", "--dry-run", "--outdir", "dist"]);
    const bundled = await readdir(join(project, "dist"));
    expect(bundled.some((f) => f.endsWith("ort-snapshot.bin"))).toBe(true);
    expect(bundled.some((f) => f.endsWith("model.onnx"))).toBe(true);
  }, 120_000);
});
