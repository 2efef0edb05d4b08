/**
 * npm run bench:load: memory of the trainer's streaming loader (data/encode-dataset.ts) against
 * file size, with the in-memory record loader (data/load-dataset.ts, what predict/evaluate use)
 * as the baseline on the smaller file. Each measurement runs in its own child process and
 * samples heapUsed, arrayBuffers and rss every 20 ms. Census-like data (simulate/census.ts).
 *
 *   npm run bench:load [-- --rows 1000000]      writes out/bench/load.json
 */
import { spawnSync } from "node:child_process";
import { appendFileSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Command } from "commander";
import { encodeDataset } from "../trainer/data/encode-dataset.ts";
import { loadDataset } from "../trainer/data/load-dataset.ts";
import { readSpecFile } from "../trainer/data/read-spec.ts";
import { writeCensus } from "../trainer/simulate/census.ts";

const DIR = "out/bench/load";
const OUT = "out/bench/load.json";

interface Measure {
  loader: "stream" | "records";
  rows: number;
  fileMB: number;
  seconds: number;
  heapPeakMB: number;
  arrayBuffersPeakMB: number;
  rssPeakMB: number;
}

if (process.argv[2] === "--child") {
  const [, , , loader, file, spec] = process.argv as [
    string,
    string,
    string,
    "stream" | "records",
    string,
    string,
  ];
  let heap = 0;
  let buffers = 0;
  let rss = 0;
  const sample = () => {
    const m = process.memoryUsage();
    heap = Math.max(heap, m.heapUsed);
    buffers = Math.max(buffers, m.arrayBuffers);
    rss = Math.max(rss, m.rss);
  };
  const timer = setInterval(sample, 20);
  const started = performance.now();
  const parsed = await readSpecFile(spec);
  const rows =
    loader === "stream"
      ? (await encodeDataset(file, parsed, { validFraction: 0.1, seed: 1 })).counts.read
      : (await loadDataset(file, parsed)).rows.length;
  sample();
  clearInterval(timer);
  const mb = (x: number) => Math.round(x / 2 ** 20);
  const result: Measure = {
    loader,
    rows,
    fileMB: mb(statSync(file).size),
    seconds: Number(((performance.now() - started) / 1000).toFixed(1)),
    heapPeakMB: mb(heap),
    arrayBuffersPeakMB: mb(buffers),
    rssPeakMB: mb(rss),
  };
  console.log(JSON.stringify(result));
  process.exit(0);
}

const opts = new Command("bench:load")
  .option("--rows <n>", "rows of the large file", (v) => Number.parseInt(v, 10), 1_000_000)
  .parse()
  .opts<{ rows: number }>();
mkdirSync(DIR, { recursive: true });
const small = writeCensus(DIR, { small: { rows: 100_000, seed: 1 } });
const big = join(DIR, "big.csv");
// Built from copies of a 100k-row block, so generation does not dominate the run.
const block = readFileSync(small.small!, "utf8");
const header = block.slice(0, block.indexOf("\n") + 1);
writeFileSync(big, block);
for (let r = 100_000; r < opts.rows; r += 100_000) appendFileSync(big, block.slice(header.length));

const self = fileURLToPath(import.meta.url);
const measure = (loader: string, file: string): Measure => {
  const child = spawnSync(process.execPath, ["--import", "tsx", self, "--child", loader, file, small.spec!], {
    encoding: "utf8",
  });
  if (child.status !== 0) throw new Error(`bench:load: ${loader} ${file} failed:\n${child.stderr}`);
  return JSON.parse(child.stdout.trim().split("\n").pop()!) as Measure;
};
const results = [measure("records", small.small!), measure("stream", small.small!), measure("stream", big)];
writeFileSync(OUT, `${JSON.stringify({ createdAt: new Date().toISOString(), results }, null, 1)}\n`);
console.log("loader   rows       file MB  heap peak MB  buffers MB  rss peak MB  seconds");
for (const r of results)
  console.log(
    [
      r.loader.padEnd(8),
      String(r.rows).padEnd(10),
      String(r.fileMB).padStart(7),
      String(r.heapPeakMB).padStart(13),
      String(r.arrayBuffersPeakMB).padStart(11),
      String(r.rssPeakMB).padStart(12),
      String(r.seconds).padStart(8),
    ].join(" "),
  );
const [records, stream] = results;
console.log(
  `heap peak on ${records!.rows} rows: records ${records!.heapPeakMB} MB, streaming ${stream!.heapPeakMB} MB (${(records!.heapPeakMB / Math.max(1, stream!.heapPeakMB)).toFixed(1)}x less); wrote ${OUT}`,
);
