/**
 * Lint: the import graph of the product code reads top-down. Each folder sits in a layer, a file
 * imports only from its own layer or those below it, and no chain of imports comes back to where
 * it started. Type-only imports count: a type lives with the lower module that both sides use.
 *
 * The layers, top first (docs/architecture.md draws them):
 *   edge/:    index → app → routes → proxy, openapi → rerank → http → model → runtime → env, log, json-containers
 *   trainer/: cli → index.ts → pipeline → workflows → compress → report → evaluate → predict →
 *             export → train → artifact → models → metrics → simulate → data → core
 *   shared/:  below edge/ and trainer/, imports neither
 * Benchmarks sit in bench/, on top of everything, and nothing outside bench/ imports them;
 * nothing in edge/ imports trainer/, scripts/ or bench/ (edge/ is exactly what the worker bundle
 * holds).
 *
 *   npx tsx scripts/check-layers.ts        (part of `npm run lint`)
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";

/** A layer: path prefixes (a folder ending in "/" or one file), top of the list = top layer. */
export type Layers = readonly (readonly string[])[];

export const EDGE_LAYERS: Layers = [
  ["edge/index.ts"],
  ["edge/app.ts"],
  ["edge/routes/"],
  ["edge/proxy/", "edge/openapi/"],
  ["edge/rerank/"],
  ["edge/http/"],
  ["edge/model/"],
  ["edge/runtime/"],
  ["edge/env.ts", "edge/log.ts", "edge/json-containers.ts", "edge/modules.d.ts"],
  ["shared/"],
];

/**
 * The trainer, top first: the CLIs; the library API; the nightly pipeline; the workflows that
 * orchestrate the parts (train and report, cross-validate, evaluate and report); then the parts,
 * each using only those below it; core/ (graph builder, pure metrics, the seeded RNG, atomic
 * writes) at the bottom.
 */
export const TRAINER_LAYERS: Layers = [
  ["trainer/cli/"],
  ["trainer/index.ts"],
  ["trainer/pipeline/"],
  ["trainer/workflows/"],
  ["trainer/compress/"],
  ["trainer/report/"],
  ["trainer/evaluate/"],
  ["trainer/predict/"],
  ["trainer/export/"],
  ["trainer/train/"],
  ["trainer/artifact/"],
  ["trainer/models/"],
  ["trainer/metrics/"],
  ["trainer/simulate/"],
  ["trainer/data/"],
  ["trainer/core/"],
  ["shared/"],
];

/** Trees whose every file sits in one of their layers: a new folder gets its place in the list. */
export const LAYERED: readonly { tree: string; layers: Layers }[] = [
  { tree: "edge/", layers: EDGE_LAYERS },
  { tree: "trainer/", layers: TRAINER_LAYERS },
];

/** Trees whose files may not import the named prefixes. */
export const FORBIDDEN: readonly { from: string; except?: string; to: readonly string[]; why: string }[] = [
  {
    from: "edge/",
    to: ["trainer/", "scripts/", "bench/", "test/"],
    why: "edge/ is what the worker bundle holds",
  },
  {
    from: "shared/",
    to: ["edge/", "trainer/", "scripts/", "bench/", "test/"],
    why: "shared/ sits below both sides",
  },
  // The CLIs sit on top: `serve` and `demo` start wrangler dev through scripts/dev-config.ts.
  { from: "trainer/", except: "trainer/cli/", to: ["scripts/"], why: "only the CLIs use the dev scripts" },
  { from: "trainer/", to: ["bench/", "test/"], why: "the product does not import its benchmarks or tests" },
  { from: "scripts/", to: ["bench/", "test/"], why: "build scripts do not import benchmarks or tests" },
];

export interface Edge {
  from: string;
  to: string;
  line: number;
}

export interface Finding {
  file: string;
  line: number;
  message: string;
}

const IMPORT =
  /(?:^|[\s;])(?:import|export)\s[^"']*?from\s*["'](\.{1,2}\/[^"']+)["']|import\(\s*["'](\.{1,2}\/[^"']+)["']\s*\)/g;

/** The relative imports of one file, resolved to repository paths. */
export function importsOf(file: string, source: string): Edge[] {
  const edges: Edge[] = [];
  const lines = source.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const text = lines[i]!;
    if (/^\s*(\/\/|\*)/.test(text)) continue;
    for (const m of text.matchAll(IMPORT)) {
      const spec = m[1] ?? m[2]!;
      edges.push({ from: file, to: normalize(join(dirname(file), spec)), line: i + 1 });
    }
  }
  // Multi-line import lists: `import {\n a,\n b,\n} from "../x"` ends on the `from` line.
  const multi = /(?:^|\n)\s*(?:import|export)\s+(?:type\s+)?\{[^}]*\}\s*from\s*["'](\.{1,2}\/[^"']+)["']/g;
  for (const m of source.matchAll(multi)) {
    const to = normalize(join(dirname(file), m[1]!));
    const line = source.slice(0, m.index + m[0].length).split("\n").length;
    if (!edges.some((e) => e.to === to && e.line === line)) edges.push({ from: file, to, line });
  }
  return edges;
}

function layerOf(layers: Layers, file: string): number {
  return layers.findIndex((layer) => layer.some((p) => (p.endsWith("/") ? file.startsWith(p) : file === p)));
}

/** Imports that climb from a lower layer to a higher one. */
export function upwardImports(edges: readonly Edge[], layers: Layers): Finding[] {
  const found: Finding[] = [];
  for (const e of edges) {
    const a = layerOf(layers, e.from);
    const b = layerOf(layers, e.to);
    if (a >= 0 && b >= 0 && b < a)
      found.push({ file: e.from, line: e.line, message: `imports ${e.to} from a layer above it` });
  }
  return found;
}

/** Files of a layered tree that no layer names. */
export function unlayeredFiles(files: readonly string[]): Finding[] {
  const found: Finding[] = [];
  for (const f of files)
    for (const { tree, layers } of LAYERED)
      if (f.startsWith(tree) && layerOf(layers, f) < 0)
        found.push({ file: f, line: 0, message: `sits in no layer of ${tree} (scripts/check-layers.ts)` });
  return found;
}

export function forbiddenImports(edges: readonly Edge[]): Finding[] {
  const found: Finding[] = [];
  for (const e of edges)
    for (const rule of FORBIDDEN)
      if (
        e.from.startsWith(rule.from) &&
        !(rule.except && e.from.startsWith(rule.except)) &&
        rule.to.some((p) => e.to.startsWith(p))
      )
        found.push({ file: e.from, line: e.line, message: `imports ${e.to}: ${rule.why}` });
  for (const e of edges)
    if (e.to.startsWith("bench/") && !e.from.startsWith("bench/"))
      found.push({ file: e.from, line: e.line, message: `imports ${e.to}: only bench/ imports bench/` });
  return found;
}

/** Each import cycle once, as the files along it (Tarjan's strongly connected components). */
export function cycles(edges: readonly Edge[]): string[][] {
  const next = new Map<string, Set<string>>();
  for (const e of edges) {
    if (!next.has(e.from)) next.set(e.from, new Set());
    next.get(e.from)!.add(e.to);
  }
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  let counter = 0;
  const visit = (v: string): void => {
    index.set(v, counter);
    low.set(v, counter);
    counter++;
    stack.push(v);
    onStack.add(v);
    for (const w of next.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1) found.push(component.sort());
    }
  };
  for (const v of [...next.keys()].sort()) if (!index.has(v)) visit(v);
  return found;
}

export function checkLayers(root: string, files: readonly string[]): Finding[] {
  const edges = files.flatMap((f) => importsOf(f, readFileSync(join(root, f), "utf8")));
  return [
    ...upwardImports(edges, EDGE_LAYERS),
    ...upwardImports(edges, TRAINER_LAYERS),
    ...unlayeredFiles(files),
    ...forbiddenImports(edges),
    ...cycles(edges).map((c) => ({ file: c[0]!, line: 0, message: `import cycle: ${c.join(" ↔ ")}` })),
  ];
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const root = fileURLToPath(new URL("..", import.meta.url));
  const files = execFileSync("git", ["ls-files", "-co", "--exclude-standard", "*.ts"], {
    cwd: root,
    encoding: "utf8",
  })
    .split("\n")
    .filter((f) => f !== "" && !f.startsWith("test/") && !f.endsWith(".d.ts"));
  const findings = checkLayers(root, files);
  for (const f of findings) console.error(`${f.file}${f.line ? `:${f.line}` : ""}: ${f.message}`);
  if (findings.length > 0) {
    console.error(
      `check-layers: ${findings.length} finding(s) against the layering (scripts/check-layers.ts)`,
    );
    process.exit(1);
  }
  console.log(`check-layers: ${files.length} files, no cycles, no upward or forbidden imports`);
}
