/** npm run predict -- --model DIR --data F --out P.csv [--int8] [--spec S] */

import { once } from "node:events";
import { createWriteStream } from "node:fs";
import { rename, rm, stat, writeFile } from "node:fs/promises";
import { Command } from "commander";
import type { FeatureValues } from "../../shared/encoder/encode.ts";
import { recordChecker } from "../data/check-record.ts";
import { DataError, readRecords } from "../data/read-rows.ts";
import {
  openServedModel,
  readOptionsFor,
  scoreRows,
  specForFile,
  specForModel,
} from "../predict/served-model.ts";
import { runCli } from "./run-cli.ts";

const CHUNK = 8192;

const program = new Command("predict")
  .description(
    "Score every row of a data file with the exported ONNX model (onnxruntime, as the edge serves it); one CSV row per input row, in input order, one column per head.",
  )
  .requiredOption("--model <dir>", "exported model directory")
  .requiredOption("--data <file>", "CSV or JSONL rows (.gz accepted)")
  .requiredOption("--out <file>", "CSV file to write")
  .option("--spec <file>", "dataset spec for reading the file (default: the one saved with the model)")
  .option("--int8", "use model.int8.onnx");

await runCli(async () => {
  const opts = program
    .parse()
    .opts<{ model: string; data: string; out: string; spec?: string; int8?: boolean }>();
  const model = await openServedModel(opts.model, opts.int8 ?? false);
  const saved = await specForModel(opts.model, opts.spec);
  const spec = saved && specForFile(saved, opts.data);
  const read = readOptionsFor(spec, opts.data);
  // The same checks of each row's features as train and evaluate make, naming the file and line.
  const checker = spec ? recordChecker(opts.data, spec, { labels: false }) : undefined;
  const heads = model.manifest.heads.map((h) => h.name);
  const tmp = `${opts.out}.tmp-${process.pid}`;
  const cannotWrite = (error: unknown) =>
    new Error(`--out: cannot write ${opts.out} (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  // Before any row is scored: a missing folder or a directory given as --out is one line now,
  // not a stream error after the scoring.
  if ((await stat(opts.out).catch(() => undefined))?.isDirectory())
    throw new Error(`--out: ${opts.out} is a directory; name the CSV file to write`);
  await writeFile(tmp, "").catch((error: unknown) => {
    throw cannotWrite(error);
  });
  const out = createWriteStream(tmp);
  // A write error (a full disk) is reported by the awaited drain or finish below, not thrown
  // from the stream as an unhandled event.
  out.on("error", () => {});
  const write = async (text: string) => {
    if (!out.write(text)) await once(out, "drain");
  };
  await write(`${heads.join(",")}\n`);
  let rows = 0;
  let chunk: FeatureValues[] = [];
  const flush = async () => {
    const scores = await scoreRows(model, chunk);
    const lines: string[] = [];
    for (let i = 0; i < chunk.length; i++)
      lines.push(heads.map((h) => scores[h]![i]!.toPrecision(7)).join(","));
    await write(`${lines.join("\n")}\n`);
    rows += chunk.length;
    chunk = [];
  };
  try {
    for await (const source of readRecords(opts.data, read)) {
      // One output row per input row: a row that cannot be read stops predict.
      if (source.problem) throw new DataError(`${opts.data}:${source.line}: ${source.problem}`);
      checker?.check(source);
      chunk.push(source.record);
      if (chunk.length === CHUNK) await flush();
    }
    if (chunk.length > 0) await flush();
    out.end();
    await once(out, "finish");
    await rename(tmp, opts.out).catch((error: unknown) => {
      throw cannotWrite(error);
    });
  } catch (error) {
    // No half-written output: the partial file is removed, and --out is never created. A write
    // still in flight fails once the stream is destroyed (ERR_STREAM_DESTROYED); the error that
    // stopped predict is the one to report, and the stream's own goes to the listener above.
    out.destroy();
    await rm(tmp, { force: true });
    throw error;
  }
  console.log(`predict: ${rows} rows scored with ${model.file} (${model.manifest.id}) -> ${opts.out}`);
});
