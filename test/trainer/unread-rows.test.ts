/**
 * Embedding rows no training row read (a missing value of a feature always present, a value new
 * to the encoder where every training value passed minCount, a bag's missing row when no bag was
 * empty) take their feature's read-weighted mean row after training; rows training read keep
 * theirs, as do rows a warm start carried over.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compileEncoder, type FeatureValues } from "../../shared/encoder/encode.ts";
import { fitEncoder } from "../../shared/encoder/fit.ts";
import {
  type CategoricalState,
  ID_FEATURE_ROWS,
  MISSING_ID,
  type MultiCategoricalState,
  type NumericState,
  OOV_ID,
} from "../../shared/encoder/state.ts";
import { parseSpec } from "../../shared/spec.ts";
import { loadTrainedModel } from "../../trainer/artifact/trained-model.ts";
import { paramsFromWeights } from "../../trainer/models/network.ts";
import { predictNetwork } from "../../trainer/train/train-network.ts";
import { neutraliseUnreadRows, rowReads } from "../../trainer/train/unread-rows.ts";
import { runTraining } from "../../trainer/workflows/train-and-report.ts";
import { lcg } from "./lcg.ts";

const features = [
  { name: "c", type: "categorical" },
  { name: "tags", type: "multi_categorical", maxValues: 3 },
  { name: "x", type: "numeric", buckets: 4 },
];
const tasks = [{ name: "click", type: "binary", column: "y" }];
const spec = parseSpec({ format: "csv", features, tasks });

/** c in a..d (every value often), 1–2 tags of t0..t4 (no bag empty), x never missing. */
function rows(n: number, seed: number): (FeatureValues & { y: number })[] {
  const rand = lcg(seed);
  return Array.from({ length: n }, () => {
    const c = "abcd"[Math.floor(rand() * 4)]!;
    const tags = Array.from({ length: 1 + Math.floor(rand() * 2) }, () => `t${Math.floor(rand() * 5)}`);
    const x = Math.round(rand() * 1000) / 10;
    const y = rand() < (c === "a" ? 0.7 : 0.3) + (x > 50 ? 0.1 : 0) ? 1 : 0;
    return { c, tags: tags.join("|"), x, y };
  });
}

const state = fitEncoder(spec, rows(400, 1));
const c = state.features[0] as CategoricalState;
const tags = state.features[1] as MultiCategoricalState;
const x = state.features[2] as NumericState;
const DIM = 3;

describe("rowReads", () => {
  const data = rows(400, 1);
  const batch = compileEncoder(state).encodeRows(data);
  const reads = rowReads(state, batch);

  it("counts each row read, not a bag's padding slots", () => {
    // Every training row reads one row of c's block and one of x's buckets.
    const sum = (offset: number, size: number) =>
      reads.slice(offset, offset + size).reduce((a, n) => a + n, 0);
    expect(sum(c.offset, c.size)).toBe(data.length);
    expect(sum(x.buckets!.offset, x.buckets!.size)).toBe(data.length);
    // Bags hold one or two tags: a read per tag, padding (the missing row at weight 0) none.
    const tagCount = data.reduce((a, r) => a + String(r.tags).split("|").length, 0);
    expect(sum(tags.offset, tags.size)).toBe(tagCount);
    for (const row of [c.offset + MISSING_ID, c.offset + OOV_ID, tags.offset + MISSING_ID, x.buckets!.offset])
      expect(reads[row]).toBe(0);
    expect(reads[c.offset + 2]).toBeGreaterThan(50);
  });

  it("neutraliseUnreadRows sets exactly the unread, uncarried rows to their block's read-weighted mean", () => {
    fc.assert(
      fc.property(
        fc.array(fc.float({ min: -1, max: 1, noNaN: true }), {
          minLength: state.vocabSize * DIM,
          maxLength: state.vocabSize * DIM,
        }),
        fc.integer({ min: 0, max: state.vocabSize - 1 }),
        (values, keptRow) => {
          const table = Float32Array.from(values);
          const before = table.slice();
          const kept = new Uint8Array(state.vocabSize);
          kept[keptRow] = 1;
          const set = neutraliseUnreadRows(table, DIM, state, reads, kept);
          let expected = 0;
          for (const block of [
            { offset: c.offset, size: c.size },
            { offset: tags.offset, size: tags.size },
            x.buckets!,
          ]) {
            const mean = new Float64Array(DIM);
            let total = 0;
            for (let r = block.offset; r < block.offset + block.size; r++) {
              total += reads[r]!;
              for (let j = 0; j < DIM; j++) mean[j]! += reads[r]! * before[r * DIM + j]!;
            }
            for (let r = block.offset; r < block.offset + block.size; r++)
              for (let j = 0; j < DIM; j++) {
                const unread = reads[r] === 0 && r !== keptRow;
                const want = unread ? mean[j]! / total : before[r * DIM + j]!;
                expect(table[r * DIM + j]).toBeCloseTo(want, 5);
              }
            for (let r = block.offset; r < block.offset + block.size; r++)
              if (reads[r] === 0 && r !== keptRow) expected++;
          }
          expect(set).toBe(expected);
        },
      ),
      { numRuns: 30 },
    );
  });
});

describe("a trained model", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "mtrank-unread-"));
    const lines = rows(600, 2).map((r) => `${r.c},${r.tags},${r.x},${r.y}`);
    await writeFile(join(dir, "data.csv"), ["c,tags,x,y", ...lines].join("\n"));
    await writeFile(join(dir, "spec.json"), JSON.stringify({ format: "csv", features, tasks }));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("serves a missing or new value of an always-present feature as its mean row, not a random one", async () => {
    const out = join(dir, "model");
    const run = { data: join(dir, "data.csv"), spec: join(dir, "spec.json"), out, epochs: 2, seed: 5 };
    await runTraining({ ...run, arch: "mmoe" });
    const model = await loadTrainedModel(out);
    const encoder = model.encoder;
    const table = model.weights.embedding!.values;
    const dim = model.weights.embedding!.shape[1]!;
    // Five fold networks: every row of the file trained one, so every row counts.
    const all = rows(600, 2);
    const reads = rowReads(encoder, compileEncoder(encoder).encodeRows(all));
    const f = encoder.features[0] as CategoricalState;
    for (const reserved of [MISSING_ID, OOV_ID]) {
      expect(reads[f.offset + reserved]).toBe(0);
      for (let j = 0; j < dim; j++) {
        let sum = 0;
        for (let r = f.offset; r < f.offset + f.size; r++) sum += reads[r]! * table[r * dim + j]!;
        expect(table[(f.offset + reserved) * dim + j]).toBeCloseTo(sum / all.length, 5);
      }
    }
    // The values training read keep rows of their own.
    const row = (r: number) => Array.from(table.subarray(r * dim, (r + 1) * dim));
    expect(row(f.offset + 2)).not.toEqual(row(f.offset + 3));
  }, 60_000);

  it("fits a new user's row: the loss over training rows read as new falls below the mean row's", async () => {
    // 150 users (an id-like feature), each seen 4 times with a bias of their own; items 0-9.
    const rand = lcg(8);
    const lines = Array.from({ length: 600 }, (_, r) => {
      const u = r % 150;
      const item = Math.floor(rand() * 10);
      const p = 1 / (1 + Math.exp(-((u % 5) - 2 + (item - 4.5) / 2)));
      return `u${u},i${item},${rand() < p ? 1 : 0}`;
    });
    const data = join(dir, "users.csv");
    await writeFile(data, ["user,item,y", ...lines].join("\n"));
    const spec = join(dir, "users.json");
    const userFeatures = [
      { name: "user", type: "categorical" },
      { name: "item", type: "categorical" },
    ];
    await writeFile(spec, JSON.stringify({ format: "csv", features: userFeatures, tasks }));
    const out = join(dir, "users-model");
    await runTraining({ data, spec, out, arch: "shared-bottom", epochs: 3, seed: 2 });
    const model = await loadTrainedModel(out);
    const user = model.encoder.features[0] as CategoricalState;
    expect(user.size).toBeGreaterThan(ID_FEATURE_ROWS);
    const table = model.weights.embedding!.values;
    const E = model.weights.embedding!.shape[1]!;
    const row = (r: number) => Array.from(table.subarray(r * E, (r + 1) * E));
    const oov = user.offset + OOV_ID;
    // A request without the user reads the same newcomer.
    expect(row(user.offset + MISSING_ID)).toEqual(row(oov));

    // Every training row scored as if its user were new, with the fitted row and with the mean.
    const rows = lines.map((l) => ({ user: "someone-new", item: l.split(",")[1] }));
    const y = lines.map((l) => Number(l.split(",")[2]));
    const encoded = compileEncoder(model.encoder).encodeRows(rows);
    const config = { ...model.config, heads: model.config.heads.map(({ calibration: _, ...h }) => h) };
    const logLoss = (values: Float32Array) => {
      const params = paramsFromWeights({
        ...model.weights,
        embedding: { ...model.weights.embedding!, values },
      });
      const p = predictNetwork(params, config, encoded).click!;
      tf.dispose(Object.values(params));
      return -y.reduce((a, t, i) => a + Math.log(t ? p[i]! : 1 - p[i]!), 0) / y.length;
    };
    const reads = rowReads(
      model.encoder,
      compileEncoder(model.encoder).encodeRows(
        lines.map((l) => ({ user: l.split(",")[0], item: l.split(",")[1] })),
      ),
    );
    expect(reads[oov]).toBe(0);
    const mean = Float32Array.from(table);
    neutraliseUnreadRows(mean.fill(0, oov * E, (oov + 1) * E), E, model.encoder, reads);
    expect(Array.from(mean.subarray(oov * E, (oov + 1) * E))).not.toEqual(row(oov));
    expect(logLoss(table)).toBeLessThan(logLoss(mean));
  }, 60_000);
});
