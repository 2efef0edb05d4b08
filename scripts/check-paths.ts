/**
 * Lint: no tracked file may name a path that leaves the repository. The project has to build and
 * pass its tests from a plain clone with nothing beside it (no `../shared` sibling folder).
 *
 * Scans the tracked *.ts, *.mts, *.js, *.mjs, *.json, *.toml, *.sh files and .ci/run for relative
 * paths (`../x`, `./../x`, `..`) in imports, strings and comments, and resolves each one the way it
 * is read:
 * - a module specifier (`from "../x"`, `import("../x")`, `require("../x")`, `vi.mock("../x")`,
 *   `new URL("../x", import.meta.url)`) or a string on a line that builds on the file's own
 *   location (import.meta.url / import.meta.dirname / __dirname): against the file's folder;
 * - `join(base, "..", "x")` / `resolve(base, "..")`: against the repository root when the base is
 *   the root (`ROOT`, `root`, `process.cwd()`), against the file's folder when it is built from
 *   import.meta / __dirname (other bases are not known here, so not checked);
 * - any other string or comment: as a path from the working directory, which is the repository
 *   root for npm scripts, vitest, wrangler and .ci/run. It is flagged when it leaves the root
 *   from there, unless it is a file-relative path that exists (`../train/step-budget.ts` cited
 *   in trainer/compress/).
 * So `../../shared/encoder/encode.ts` imported by edge/model/x.ts (the repository's own shared/)
 * passes, and `"../shared/data/x.csv"` in a test, which vitest reads from the root, fails.
 *
 *   npx tsx scripts/check-paths.ts        (part of `npm run lint`)
 */
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, isAbsolute, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export interface Escape {
  line: number;
  path: string;
}

const SCANNED = /\.(ts|mts|cts|js|mjs|cjs|json|toml|sh)$/;
const EXTRA = new Set([".ci/run"]);
/**
 * The lockfile lists the dependency tree, not project paths; this checker and its test name
 * escaping paths on purpose, as examples.
 */
const SKIPPED = new Set(["package-lock.json", "scripts/check-paths.ts", "test/shared/check-paths.test.ts"]);

/**
 * A relative path: optional `./` or `../` steps ending in a `..` step, then the rest of the path up
 * to a quote, space, bracket or separator. Not preceded by a word character, a dot or a slash, so
 * `a/../b`, `1..n` and `...` are not read as paths.
 */
const RELATIVE = /(?<![\w.@/$-])((?:\.\.?\/)*\.\.(?=$|[/"'`\s),\]}:;])(?:\/[^\s"'`)\]},;:<>|*?]*)?)/g;
/** The text before a module specifier's opening quote. */
const MODULE_CONTEXT =
  /(?:\bfrom\s*|\bimport\s*\(?\s*|\brequire\s*\(\s*|\bvi\.(?:mock|doMock|importActual)\s*\(\s*|\bimport\.meta\.resolve\s*\(\s*|\bnew URL\s*\(\s*)["'`]$/;
/** A line that builds a path on the file's own location. */
const FILE_BASE = /\bimport\.meta\.(?:url|dirname|filename)\b|\b__dirname\b|\b__filename\b/;
const ROOT_BASE = /^(?:process\.cwd\(\)|[\w.]*(?:root|ROOT|Root))$/;

/** A comment on the line, or the line before, that lets a deliberate escaping path stand. */
const IGNORE = /check-paths: ignore\b/;

function outside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel === ".." || rel.startsWith("../") || isAbsolute(rel);
}

/** The part of a path before any template placeholder (`../data/${name}` -> `../data/`). */
function literalPart(path: string): string {
  const cut = path.indexOf("${");
  return cut < 0 ? path : path.slice(0, cut);
}

/** Top-level comma-separated arguments of the call whose `(` is at `open`, or undefined if it does not close on the line. */
function callArguments(line: string, open: number): string[] | undefined {
  const args: string[] = [];
  let depth = 0;
  let quote = "";
  let start = open + 1;
  for (let i = open; i < line.length; i++) {
    const c = line[i]!;
    if (quote) {
      if (c === "\\") i++;
      else if (c === quote) quote = "";
    } else if (c === '"' || c === "'" || c === "`") quote = c;
    else if (c === "(" || c === "[" || c === "{") depth++;
    else if (c === ")" || c === "]" || c === "}") {
      depth--;
      if (depth === 0) {
        args.push(line.slice(start, i).trim());
        return args;
      }
    } else if (c === "," && depth === 1) {
      args.push(line.slice(start, i).trim());
      start = i + 1;
    }
  }
  return undefined;
}

const STRING = /^(["'`])([^"'`$]*)\1$/;

/** `join(base, "..", "x")` / `resolve(base, "..", "x")` calls on the line that leave the root. */
function joinEscapes(root: string, fileDir: string, line: string): string[] {
  const found: string[] = [];
  for (const call of line.matchAll(/(?<![\w.]meta\.)\b(?:join|resolve)\s*\(/g)) {
    const args = callArguments(line, call.index + call[0].length - 1);
    if (!args || args.length < 2) continue;
    const strings = args.map((a) => STRING.exec(a)?.[2]);
    const [first, ...rest] = args;
    let base: string;
    let parts: (string | undefined)[];
    if (strings[0] !== undefined) {
      base = root; // all strings: a path from the working directory
      parts = strings;
    } else if (FILE_BASE.test(first!)) {
      base = fileDir;
      parts = strings.slice(1);
    } else if (ROOT_BASE.test(first!)) {
      base = root;
      parts = strings.slice(1);
    } else continue;
    if (parts.some((p) => p === undefined) || !parts.some((p) => p!.split("/").includes(".."))) continue;
    if (outside(root, resolve(base, ...(parts as string[])))) found.push(rest.join(", ") || first!);
  }
  return found;
}

/**
 * Every path in `text` (the contents of `file`, relative to `root`) that leaves `root`.
 * `exists` says whether an absolute path exists (a parameter so tests can give their own tree).
 */
export function findEscapes(
  root: string,
  file: string,
  text: string,
  exists: (path: string) => boolean = existsSync,
): Escape[] {
  const fileDir = resolve(root, dirname(file));
  const found: Escape[] = [];
  const lines = text.split("\n");
  for (const [i, line] of lines.entries()) {
    // A test that feeds hostile paths to a guard names them on purpose, and says so.
    if (IGNORE.test(line) || (i > 0 && IGNORE.test(lines[i - 1]!))) continue;
    const seen = new Set<string>();
    const flag = (path: string) => {
      if (!seen.has(path)) found.push({ line: i + 1, path });
      seen.add(path);
    };
    for (const match of line.matchAll(RELATIVE)) {
      // A path that ends a sentence in a comment keeps its full stop out of the path.
      const path = match[1]!.replace(/(?<=\w)\.+$/, "");
      const literal = literalPart(path);
      const fromFile = resolve(fileDir, literal);
      if (MODULE_CONTEXT.test(line.slice(0, match.index)) || FILE_BASE.test(line)) {
        if (outside(root, fromFile)) flag(path);
        continue;
      }
      // A bare `..` outside a module specifier is a join/resolve step (checked below) or unknown.
      if (/^(?:\.\.?\/?)+$/.test(path)) continue;
      const fromRoot = resolve(root, literal);
      if (!outside(root, fromRoot)) continue;
      // Read from the root it leaves the repository; let it pass only as an existing path from the file's folder.
      const target = literal === path ? fromFile : literal.endsWith("/") ? fromFile : dirname(fromFile);
      if (outside(root, fromFile) || !exists(target)) flag(path);
    }
    if (seen.size === 0) for (const path of joinEscapes(root, fileDir, line)) flag(path);
  }
  return found;
}

function trackedFiles(root: string): string[] {
  return execFileSync("git", ["ls-files", "-z"], { cwd: root, encoding: "utf8" })
    .split("\0")
    .filter((f) => f && !SKIPPED.has(f) && (SCANNED.test(f) || EXTRA.has(f)));
}

export function checkRepository(root: string): string[] {
  const problems: string[] = [];
  for (const file of trackedFiles(root)) {
    const absolute = join(root, file);
    if (!existsSync(absolute)) continue; // deleted in the working tree, not yet in the index
    for (const { line, path } of findEscapes(root, file, readFileSync(absolute, "utf8"))) {
      problems.push(`${file}:${line}: ${path}`);
    }
  }
  return problems;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
  const problems = checkRepository(root);
  if (problems.length > 0) {
    console.error("check-paths: these paths leave the repository (a plain clone has nothing beside it):");
    for (const p of problems) console.error(`  ${p}`);
    process.exitCode = 1;
  } else {
    console.log("check-paths: no tracked file names a path outside the repository");
  }
}
