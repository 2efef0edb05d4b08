/**
 * Id dropout (trainer/train/id-dropout.ts): a share of each epoch's rows read an id-like feature
 * as a value never seen, in a copy of the batch; the draws follow the seed and the epoch alone;
 * bad requests name the flag. Trained end to end, it ranks items the training file never had
 * better than the same run without it.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compileEncoder, type FeatureValues } from "../../shared/encoder/encode.ts";
import { fitEncoder } from "../../shared/encoder/fit.ts";
import { type CategoricalState, encodedColumns, OOV_ID } from "../../shared/encoder/state.ts";
import { parseSpec } from "../../shared/spec.ts";
import { exportModelDir } from "../../trainer/export/export-model.ts";
import { dropIds, epochDraws, idDropout } from "../../trainer/train/id-dropout.ts";
import { evaluateModelDir } from "../../trainer/workflows/evaluate-and-report.ts";
import { runTraining } from "../../trainer/workflows/train-and-report.ts";
import { lcg } from "./lcg.ts";

const features = [
  { name: "item", type: "categorical" },
  { name: "genre", type: "categorical" },
  { name: "x", type: "numeric" },
];
const tasks = [{ name: "click", type: "binary", column: "y" }];
const spec = parseSpec({ format: "csv", features, tasks });

/** Item i (of `items`, from `first`) has genre i % 5; a click is likelier for genres 0–1 and high x. */
function rows(n: number, seed: number, first = 0, items = 300): (FeatureValues & { y: number })[] {
  const rand = lcg(seed);
  return Array.from({ length: n }, () => {
    const i = first + Math.floor(rand() * items);
    const genre = i % 5;
    const x = Math.round(rand() * 100) / 10;
    const p = 0.15 + (genre < 2 ? 0.45 : 0) + (x > 5 ? 0.15 : 0) + ((i * 7919) % 13 === 0 ? 0.2 : 0);
    return { item: `i${i}`, genre: `g${genre}`, x, y: rand() < p ? 1 : 0 };
  });
}

const data = rows(3000, 1);
const state = fitEncoder(
  spec,
  data,
  undefined,
  data.map((r) => [r.y]),
);
const batch = {
  ...compileEncoder(state).encodeRows(data),
  labels: { click: Float32Array.from(data, (r) => r.y) },
};
const item = state.features.find((f) => f.name === "item") as CategoricalState;
const config = { denseSize: state.denseSize, idSlots: state.idSlots };

describe("dropIds", () => {
  const dropout = idDropout(state, { item: 0.2 }, 42)!;
  const idx = Int32Array.from({ length: 2000 }, (_, i) => (i * 7) % data.length);

  it("reads the feature as unseen in about its share of rows, as the encoder writes an unseen value", () => {
    const before = { dense: batch.dense.slice(), ids: batch.ids.slice() };
    const { batch: out, idx: local } = dropIds(config, batch, idx, dropout, epochDraws(dropout, 1));
    expect(local).toEqual(Int32Array.from({ length: idx.length }, (_, i) => i));
    const unseen = compileEncoder(state).encodeRows([{ item: "never-seen", genre: "g0", x: 1 }]);
    const derived = encodedColumns(item).dense;
    expect(derived.length).toBeGreaterThan(0);
    let dropped = 0;
    for (let i = 0; i < idx.length; i++) {
      const r = idx[i]!;
      const id = out.ids[i * config.idSlots + item.slot];
      for (let s = 0; s < config.idSlots; s++)
        if (s !== item.slot) expect(out.ids[i * config.idSlots + s]).toBe(batch.ids[r * config.idSlots + s]);
      for (let c = 0; c < config.denseSize; c++) {
        const value = out.dense[i * config.denseSize + c];
        if (id === item.offset + OOV_ID && derived.includes(c)) expect(value).toBe(unseen.dense[c]);
        else expect(value).toBe(batch.dense[r * config.denseSize + c]);
      }
      expect(out.labels.click![i]).toBe(batch.labels.click[r]);
      if (id === item.offset + OOV_ID) dropped++;
      else expect(id).toBe(batch.ids[r * config.idSlots + item.slot]);
    }
    expect(dropped / idx.length).toBeGreaterThan(0.17);
    expect(dropped / idx.length).toBeLessThan(0.23);
    // The data itself is never changed.
    expect(batch.dense).toEqual(before.dense);
    expect(batch.ids).toEqual(before.ids);
  });

  it("draws from the seed and the epoch alone: a resumed epoch drops the same rows", () => {
    const drops = (d: typeof dropout, epoch: number) => {
      const { batch: out } = dropIds(config, batch, idx, d, epochDraws(d, epoch));
      return Array.from(idx, (_, i) => out.ids[i * config.idSlots + item.slot] === item.offset + OOV_ID);
    };
    expect(drops(dropout, 3)).toEqual(drops(dropout, 3));
    expect(drops(dropout, 3)).not.toEqual(drops(dropout, 4));
    expect(drops(dropout, 3)).not.toEqual(drops(idDropout(state, { item: 0.2 }, 7)!, 3));
  });

  it("names the flag, the feature and the rule for a request it cannot follow", () => {
    expect(idDropout(state, {}, 1)).toBeUndefined();
    expect(() => idDropout(state, { itme: 0.1 }, 1)).toThrow(
      '--id-dropout: the spec has no feature "itme" (id-like features: item)',
    );
    expect(() => idDropout(state, { genre: 0.1 }, 1)).toThrow(/"genre" is not an id-like feature/);
    expect(() => idDropout(state, { item: 0.9 }, 1)).toThrow(/item's share must be above 0 and at most 0.5/);
  });
});

describe("training with id dropout", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "mtrank-id-dropout-"));
    const csv = (rs: (FeatureValues & { y: number })[]) =>
      ["item,genre,x,y", ...rs.map((r) => `${r.item},${r.genre},${r.x},${r.y}`)].join("\n");
    await writeFile(join(dir, "train.csv"), csv(rows(12_000, 2)));
    // Items 300..399: none in the training file.
    await writeFile(join(dir, "new.csv"), csv(rows(3000, 3, 300, 100)));
    await writeFile(
      join(dir, "spec.json"),
      JSON.stringify({ format: "csv", features, tasks: [{ ...tasks[0], positive: ["1"] }] }),
    );
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("ranks new items by their other features better than the same run without it", async () => {
    const newAuc = async (name: string, shares?: Record<string, number>) => {
      const out = join(dir, name);
      await runTraining({
        data: join(dir, "train.csv"),
        spec: join(dir, "spec.json"),
        out,
        arch: "shared-bottom",
        seed: 42,
        averageFolds: 1,
        ...(shares ? { idDropout: shares } : {}),
      });
      await exportModelDir(out, {});
      const report = await evaluateModelDir({ model: out, data: join(dir, "new.csv") });
      return report.tasks.click!.auc!;
    };
    const without = await newAuc("plain");
    const withDropout = await newAuc("dropout", { item: 0.2 });
    expect(withDropout).toBeGreaterThan(without + 0.03);
  }, 120_000);
});
