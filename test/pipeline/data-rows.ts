/**
 * A small synthetic day of logs for the pipeline's data, stats and drift tests, written as CSV,
 * JSONL or Parquet (hyparquet-writer), all from the same rows.
 */

import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as zlib from "node:zlib";
import { type ColumnSource, parquetWriteFile } from "hyparquet-writer";
import { type DatasetSpec, parseSpec } from "../../shared/spec.ts";
import { mulberry32 } from "../../trainer/core/rng.ts";

export const spec: DatasetSpec = parseSpec({
  format: "csv",
  features: [
    { name: "price", type: "numeric" },
    { name: "country", type: "categorical" },
    { name: "tags", type: "multi_categorical" },
    { name: "emb", type: "vector", dim: 2 },
  ],
  tasks: [
    { name: "click", type: "binary", column: "click" },
    { name: "dwell", type: "regression", column: "dwell", transform: "log1p", missingLabel: "mask" },
  ],
});

/** One row as a log holds it; null is a missing value. */
export interface Row {
  price: number | null;
  country: string | null;
  tags: string;
  emb: string;
  click: number;
  dwell: number | null;
}

export interface DayOptions {
  seed?: number;
  /** Added to every price (a shifted feature). */
  shift?: number;
  /** Share of rows whose country is a brand-new one ("new-<k>"). */
  newCountries?: number;
  /** Click probability. */
  clickRate?: number;
  /** Share of rows without a price. */
  missingPrice?: number;
}

const COUNTRIES = ["us", "de", "fr", "jp", "br"];
const TAGS = ["a", "b", "c", "d"];

/** `n` rows drawn with a seeded generator. */
export function makeRows(n: number, options: DayOptions = {}): Row[] {
  const random = mulberry32(options.seed ?? 7);
  const rows: Row[] = [];
  for (let i = 0; i < n; i++) {
    const missing = random() < (options.missingPrice ?? 0.05);
    const price = missing ? null : Math.round((10 + 90 * random() ** 2 + (options.shift ?? 0)) * 100) / 100;
    const country =
      random() < (options.newCountries ?? 0)
        ? `new-${Math.floor(random() * 20)}`
        : random() < 0.03
          ? null
          : COUNTRIES[Math.floor(random() * random() * COUNTRIES.length)]!;
    const tags = TAGS.filter(() => random() < 0.4).join("|");
    const emb = `${random().toFixed(3)} ${random().toFixed(3)}`;
    const click = random() < (options.clickRate ?? 0.2) ? 1 : 0;
    const dwell = click === 1 ? Math.round(random() * 300) : null;
    rows.push({ price, country, tags, emb, click, dwell });
  }
  return rows;
}

const COLUMNS = ["price", "country", "tags", "emb", "click", "dwell"] as const;

export async function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), "mtrank-pipeline-"));
}

/** The rows as CSV text (missing values empty, the spec's default missing token). */
export function csvText(rows: readonly Row[]): string {
  const lines = rows.map((r) => COLUMNS.map((c) => (r[c] === null ? "" : String(r[c]))).join(","));
  return `${COLUMNS.join(",")}\n${lines.join("\n")}\n`;
}

/** The rows as JSON lines (missing values null). */
export function jsonlText(rows: readonly Row[]): string {
  return rows.map((r) => JSON.stringify(r)).join("\n");
}

export async function writeCsv(dir: string, name: string, rows: readonly Row[]): Promise<string> {
  const path = join(dir, name);
  const text = csvText(rows);
  await writeFile(path, name.endsWith(".gz") ? zlib.gzipSync(text) : text);
  return path;
}

export async function writeJsonl(dir: string, name: string, rows: readonly Row[]): Promise<string> {
  const path = join(dir, name);
  const text = jsonlText(rows);
  await writeFile(path, name.endsWith(".gz") ? zlib.gzipSync(text) : text);
  return path;
}

/** Compressors hyparquet-writer has no built-in for, from node:zlib (zstd where this Node has it). */
const COMPRESS = {
  GZIP: (input: Uint8Array) => new Uint8Array(zlib.gzipSync(input)),
  BROTLI: (input: Uint8Array) => new Uint8Array(zlib.brotliCompressSync(input)),
  ZSTD: (input: Uint8Array) => {
    const zstd = (zlib as { zstdCompressSync?: (input: Uint8Array) => Buffer }).zstdCompressSync;
    if (!zstd) throw new Error("this Node has no zstd");
    return new Uint8Array(zstd(input));
  },
};

/** The codecs writeParquet can write here. */
export const PARQUET_CODECS: readonly ("SNAPPY" | keyof typeof COMPRESS)[] = [
  "SNAPPY",
  "GZIP",
  "BROTLI",
  ...("zstdCompressSync" in zlib ? (["ZSTD"] as const) : []),
];

/** Parquet with typed columns: price and dwell DOUBLE, click INT64, the rest STRING. */
export function writeParquet(
  dir: string,
  name: string,
  rows: readonly Row[],
  options: { rowGroupSize?: number; codec?: (typeof PARQUET_CODECS)[number] } = {},
): string {
  const path = join(dir, name);
  const column = (name: (typeof COLUMNS)[number], type: ColumnSource["type"]): ColumnSource => ({
    name,
    type,
    data: rows.map((r) => (name === "click" ? BigInt(r.click) : r[name])),
  });
  parquetWriteFile({
    filename: path,
    columnData: [
      column("price", "DOUBLE"),
      column("country", "STRING"),
      column("tags", "STRING"),
      column("emb", "STRING"),
      column("click", "INT64"),
      column("dwell", "DOUBLE"),
    ],
    ...(options.rowGroupSize ? { rowGroupSize: options.rowGroupSize } : {}),
    ...(options.codec ? { codec: options.codec, compressors: COMPRESS } : {}),
  });
  return path;
}
