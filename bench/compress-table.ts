/**
 * npm run bench:compress: size, latency and test AUC of a large MMoE teacher and what the
 * compression verbs make of it — a distilled student (shared-bottom [64, 32], tower [16]), the
 * teacher pruned to 80% zeros per kernel and fine-tuned 2 epochs — each as float32 and int8.
 *
 * Suites: the recommendation simulator (20k requests, split by request: the first 80% train, the
 * rest test) and the census-like set (simulate/census.ts; 50k train, 20k test rows).
 * Columns: file bytes, gzip -9 bytes (what a CDN or R2 transfer costs), onnxruntime-web (wasm,
 * one thread, as the worker runs it) p50 of session.run at 200 candidates (the six files of a
 * suite timed round-robin), per-task test AUC from that file. Writes out/bench/compress.json.
 *
 *   npm run bench:compress [-- --suite census|simulator] [--quick]
 */
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { gzipSync } from "node:zlib";
import { Command } from "commander";
import { compileEncoder } from "../shared/encoder/encode.ts";
import type { ModelManifest } from "../shared/manifest.ts";
import { runDistill } from "../trainer/compress/run-distill.ts";
import { runPrune } from "../trainer/compress/run-prune.ts";
import { type Dataset, loadDataset } from "../trainer/data/load-dataset.ts";
import { readSpecFile } from "../trainer/data/read-spec.ts";
import { exportModelDir, INT8_ONNX_FILE, ONNX_FILE } from "../trainer/export/export-model.ts";
import { openSession, runHeads, type Session } from "../trainer/export/onnx-session.ts";
import { probeBatch } from "../trainer/export/probe-batch.ts";
import { labelledAuc } from "../trainer/metrics/labelled-rows.ts";
import { DEFAULT_ARCH_OPTIONS } from "../trainer/models/types.ts";
import { selectBackend } from "../trainer/train/backend.ts";
import { runTraining } from "../trainer/workflows/train-and-report.ts";
import { censusSuite, fmtAucs, type SuiteFiles, simulatorSuite } from "./suites.ts";

const OUT = "out/bench/compress.json";
const WORK = "out/bench/compress";
const CANDIDATES = 200;
const SEED = 42;
/** The teacher: twice the default MMoE's experts, each twice as wide. */
const TEACHER_OPTIONS = { ...DEFAULT_ARCH_OPTIONS, experts: 8, expertSizes: [128, 64], tower: [32] };

interface Row {
  suite: string;
  model: string;
  weights: "float32" | "int8";
  parameters: number;
  bytes: number;
  gzipBytes: number;
  p50Ms: number;
  auc: Record<string, number>;
}

const opts = new Command("bench:compress")
  .option("--suite <name>", "census, simulator or all", "all")
  .option("--quick", "smaller data sets and fewer timing runs (a smoke run)")
  .option("--runs <n>", "timed runs per file", "200")
  .parse()
  .opts<{ suite: string; quick?: boolean; runs: string }>();
const scale = opts.quick ? 0.1 : 1;
const runs = opts.quick ? 20 : Number(opts.runs);
if (!Number.isInteger(runs) || runs < 5)
  throw new Error(`--runs: expected an integer >= 5, got "${opts.runs}"`);

const backend = await selectBackend();
const rows: Row[] = [];
if (opts.suite === "all" || opts.suite === "simulator")
  rows.push(
    ...(await suite(
      "simulator",
      await simulatorSuite(join(WORK, "simulator", "data"), Math.round(20_000 * scale)),
    )),
  );
if (opts.suite === "all" || opts.suite === "census") {
  const files = censusSuite(
    join(WORK, "census", "data"),
    Math.round(50_000 * scale),
    Math.round(20_000 * scale),
  );
  rows.push(...(await suite("census", files)));
}
await mkdir("out/bench", { recursive: true });
await writeFile(
  OUT,
  `${JSON.stringify({ createdAt: new Date().toISOString(), backend, candidates: CANDIDATES, runs, rows }, null, 1)}\n`,
);
printTable(rows);
console.log(`wrote ${OUT}`);

async function suite(name: string, files: SuiteFiles): Promise<Row[]> {
  const dir = join(WORK, name);
  const teacher = join(dir, "teacher");
  const student = join(dir, "student");
  const pruned = join(dir, "pruned");
  let started = performance.now();
  await trainTeacher(files, teacher);
  console.log(`${name}: teacher trained (${seconds(started)} s)`);
  started = performance.now();
  await runDistill({
    teacher,
    data: files.train,
    out: student,
    arch: "shared-bottom",
    options: { bottom: [64, 32], tower: [16] },
    backend,
  });
  console.log(`${name}: student distilled (${seconds(started)} s)`);
  started = performance.now();
  await runPrune({ model: teacher, data: files.train, out: pruned, sparsity: 0.8, epochs: 2, backend });
  console.log(`${name}: teacher pruned (${seconds(started)} s)`);
  const test = await loadDataset(files.test, await readSpecFile(files.spec));
  const measured: Measured[] = [];
  for (const [model, modelDir] of [
    ["teacher (mmoe 8×[128,64])", teacher],
    ["student (distilled sb [64,32])", student],
    ["pruned 80% (teacher)", pruned],
  ] as const) {
    const { manifest } = await exportModelDir(modelDir, { int8: true });
    const parameters = await parameterCount(modelDir);
    for (const weights of ["float32", "int8"] as const) {
      const bytes = new Uint8Array(
        await readFile(join(modelDir, weights === "int8" ? INT8_ONNX_FILE : ONNX_FILE)),
      );
      const session = await openSession(bytes);
      measured.push({
        row: {
          suite: name,
          model,
          weights,
          parameters,
          bytes: bytes.length,
          gzipBytes: gzipSync(bytes, { level: 9 }).length,
          p50Ms: Number.NaN,
          auc: await testAuc(session, manifest, test),
        },
        session,
        manifest,
      });
    }
  }
  await timeInterleaved(measured);
  for (const { row, session } of measured) {
    await session.release();
    console.log(
      `${name} ${row.model} ${row.weights}: ${row.bytes} B, gzip ${row.gzipBytes} B, p50 ${row.p50Ms.toFixed(3)} ms, ${fmtAucs(row.auc)}`,
    );
  }
  return measured.map((m) => m.row);
}

interface Measured {
  row: Row;
  session: Session;
  manifest: ModelManifest;
}

/**
 * A teacher larger than `train`'s defaults (TEACHER_OPTIONS), trained and saved as `train` would,
 * but without the L2 penalty and calibration that became `train`'s defaults after these figures
 * were first measured.
 */
async function trainTeacher(files: SuiteFiles, out: string): Promise<void> {
  await runTraining({
    data: files.train,
    spec: files.spec,
    arch: "mmoe",
    options: TEACHER_OPTIONS,
    out,
    seed: SEED,
    l2: 0,
    calibration: "none",
    backend,
  });
}

/**
 * p50 of session.run at CANDIDATES rows for every file, timed round-robin (one run of each file
 * in turn) so that load from other processes on the machine falls on all of them alike.
 */
async function timeInterleaved(all: Measured[]): Promise<void> {
  const probes = all.map((m) => probeBatch(m.manifest.features, CANDIDATES));
  const times = all.map((): number[] => []);
  for (let i = -5; i < runs; i++) {
    for (const [k, m] of all.entries()) {
      const t = performance.now();
      await runHeads(m.session, m.manifest, probes[k]!);
      if (i >= 0) times[k]!.push(performance.now() - t);
    }
  }
  all.forEach((m, k) => {
    const sorted = times[k]!.sort((a, b) => a - b);
    m.row.p50Ms = sorted[Math.floor(sorted.length / 2)]!;
  });
}

/** Per-task AUC of the file's outputs on the test rows (scored in chunks). */
async function testAuc(
  session: Session,
  manifest: ModelManifest,
  test: Dataset,
): Promise<Record<string, number>> {
  const encoder = compileEncoder(manifest.features);
  const scores: Record<string, Float32Array> = Object.fromEntries(
    manifest.heads.map((h) => [h.name, new Float32Array(test.rows.length)]),
  );
  for (let start = 0; start < test.rows.length; start += 4096) {
    const part = await runHeads(session, manifest, encoder.encodeRows(test.rows.slice(start, start + 4096)));
    for (const h of manifest.heads) scores[h.name]!.set(part[h.name]!, start);
  }
  return Object.fromEntries(
    manifest.heads.map((h) => [h.name, labelledAuc(test.labels[h.name]!, scores[h.name]!)]),
  );
}

async function parameterCount(dir: string): Promise<number> {
  const file = JSON.parse(await readFile(join(dir, "training", "network.json"), "utf8")) as {
    weights: { length: number }[];
  };
  return file.weights.reduce((n, w) => n + w.length, 0);
}

function seconds(since: number): string {
  return ((performance.now() - since) / 1000).toFixed(0);
}

function printTable(all: Row[]): void {
  for (const name of [...new Set(all.map((r) => r.suite))]) {
    const inSuite = all.filter((r) => r.suite === name);
    const tasks = [...new Set(inSuite.flatMap((r) => Object.keys(r.auc)))];
    console.log(`\n${name}: ${CANDIDATES} candidates, onnxruntime-web wasm 1 thread; test AUC`);
    console.log(
      [
        "model".padEnd(31),
        "weights".padEnd(8),
        "params".padStart(8),
        "bytes".padStart(9),
        "gzip".padStart(9),
        "p50 ms".padStart(8),
        ...tasks.map((t) => t.padStart(14)),
      ].join(" "),
    );
    for (const r of inSuite)
      console.log(
        [
          r.model.padEnd(31),
          r.weights.padEnd(8),
          String(r.parameters).padStart(8),
          String(r.bytes).padStart(9),
          String(r.gzipBytes).padStart(9),
          r.p50Ms.toFixed(3).padStart(8),
          ...tasks.map((t) => (r.auc[t] ?? Number.NaN).toFixed(4).padStart(14)),
        ].join(" "),
      );
  }
}
