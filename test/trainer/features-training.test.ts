/**
 * Training on bag and vector features end to end: a task that depends only on a bag of tags and
 * one that depends only on a vector are both learned (from JSONL arrays and from CSV strings),
 * as measured by the exported ONNX graph on fresh rows against the true probabilities' AUC; a
 * vector of the wrong length is a DataError naming file, line, column.
 */
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { compileEncoder } from "../../shared/encoder/encode.ts";
import { parseSpec } from "../../shared/spec.ts";
import { auc } from "../../trainer/core/metrics.ts";
import { createRng } from "../../trainer/core/rng.ts";
import { encodeDataset } from "../../trainer/data/encode-dataset.ts";
import { exportModelDir } from "../../trainer/export/export-model.ts";
import { openSession, runHeads } from "../../trainer/export/onnx-session.ts";
import { runTraining } from "../../trainer/workflows/train-and-report.ts";

const DIM = 6;
const ROWS = 4000;

type Row = {
  tags: string[];
  vec: number[];
  noise: number;
  liked: number;
  clicked: number;
  /** True probabilities (not written to the data files). */
  pLiked: number;
  pClicked: number;
};

/**
 * liked: logit = 5 · (share of "good" tags − share of "bad" tags), from the bag only.
 * clicked: logit = 2.5 · vec·u, from the vector only.
 */
function synthetic(seed: number, count = ROWS): Row[] {
  const rng = createRng(seed);
  const u = Array.from({ length: DIM }, (_, i) => (i % 2 === 0 ? 1 : -1) / Math.sqrt(DIM));
  const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));
  return Array.from({ length: count }, () => {
    const tags = Array.from({ length: 1 + rng.int(4) }, () => `t${rng.int(20)}`);
    const score = tags.reduce(
      (s, t) => s + (Number(t.slice(1)) < 5 ? 1 : Number(t.slice(1)) >= 15 ? -1 : 0),
      0,
    );
    const vec = Array.from({ length: DIM }, () => rng.normal());
    const dot = vec.reduce((s, x, i) => s + x * u[i]!, 0);
    const pLiked = sigmoid((5 * score) / tags.length);
    const pClicked = sigmoid(2.5 * dot);
    return {
      tags,
      vec,
      noise: rng.normal(),
      liked: rng.uniform() < pLiked ? 1 : 0,
      clicked: rng.uniform() < pClicked ? 1 : 0,
      pLiked,
      pClicked,
    };
  });
}

const tasks = [
  { name: "liked", type: "binary", column: "liked" },
  { name: "clicked", type: "binary", column: "clicked" },
];
const features = [
  { name: "tags", type: "multi_categorical", side: "user" },
  { name: "vec", type: "vector", dim: DIM },
  { name: "noise", type: "numeric" },
];

let dir: string;
const rows = synthetic(17);
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "mtrank-features-"));
  await writeFile(
    join(dir, "data.jsonl"),
    rows.map(({ pLiked, pClicked, ...r }) => JSON.stringify(r)).join("\n"),
  );
  const csv = rows.map(
    (r) =>
      `${r.tags.join("|")},${r.vec.map((x) => x.toFixed(5)).join(" ")},${r.noise},${r.liked},${r.clicked}`,
  );
  await writeFile(join(dir, "data.csv"), ["tags,vec,noise,liked,clicked", ...csv].join("\n"));
  await writeFile(join(dir, "jsonl.json"), JSON.stringify({ format: "jsonl", features, tasks }));
  await writeFile(join(dir, "csv.json"), JSON.stringify({ format: "csv", features, tasks }));
});

describe("training on bag and vector features", () => {
  it.each(["jsonl", "csv"])("learns a task from a bag and one from a vector (%s)", async (format) => {
    const out = join(dir, `model-${format}`);
    const summary = await runTraining({
      data: join(dir, `data.${format}`),
      spec: join(dir, `${format}.json`),
      arch: "shared-bottom",
      out,
      epochs: 8,
      // 3,600 training rows: small batches give the embedding rows enough steps to move.
      batchSize: 64,
      seed: 3,
    });
    // A small file: five fold networks averaged, every row validated once, out of fold.
    expect(summary.folds?.map((f) => f.trainRows + f.validRows)).toEqual(Array(5).fill(ROWS));
    expect([summary.trainRows, summary.validRows]).toEqual([ROWS, ROWS]);
    const { manifest, onnxBytes } = await exportModelDir(out);
    expect(manifest.features.features.map((f) => f.kind)).toEqual(["multi_categorical", "vector", "numeric"]);
    // Fresh rows, scored by the exported graph: what the edge would serve.
    const fresh = synthetic(99, 3000);
    const batch = compileEncoder(manifest.features).encodeRows(fresh);
    const heads = await runHeads(await openSession(onnxBytes), manifest, batch);
    for (const [task, truth] of [
      ["liked", "pLiked"],
      ["clicked", "pClicked"],
    ] as const) {
      const y = Float32Array.from(fresh, (r) => r[task]);
      const model = auc(y, heads[task]!);
      const oracle = auc(
        y,
        Float32Array.from(fresh, (r) => r[truth]),
      );
      console.info(
        `features-training ${format} ${task}: AUC ${model.toFixed(3)} (true probabilities ${oracle.toFixed(3)})`,
      );
      expect(model).toBeGreaterThan(0.8);
      expect(model).toBeGreaterThan(oracle - 0.02);
    }
  }, 120_000);

  it("refuses a vector of the wrong length, naming file, line and column", async () => {
    const file = join(dir, "bad.csv");
    const lines = rows
      .slice(0, 50)
      .map((r) => `${r.tags.join("|")},${r.vec.join(" ")},${r.noise},${r.liked},${r.clicked}`);
    lines[9] = "t1|t2,0.5 0.5,0,1,0";
    await writeFile(file, ["tags,vec,noise,liked,clicked", ...lines].join("\n"));
    await expect(
      runTraining({
        data: file,
        spec: join(dir, "csv.json"),
        arch: "single",
        out: join(dir, "bad"),
        epochs: 1,
      }),
    ).rejects.toThrow(`${file}:11: column "vec": expected ${DIM} numbers, got 2`);
  });

  it("counts the bag values dropped past maxValues", async () => {
    const file = join(dir, "long-bags.csv");
    // 40 rows of 3 tags with maxValues 2: one value dropped per row.
    const lines = Array.from({ length: 40 }, (_, i) => `a|b|c${i % 3},${i % 2}`);
    await writeFile(file, ["tags,liked", ...lines].join("\n"));
    const spec = parseSpec({
      format: "csv",
      features: [{ name: "tags", type: "multi_categorical", maxValues: 2 }],
      tasks: [{ name: "liked", type: "binary", column: "liked" }],
    });
    const data = await encodeDataset(file, spec, { validFraction: 0.2, seed: 1 });
    expect(data.dropped).toEqual({ tags: 40 });
    expect(data.train.rows + data.valid.rows).toBe(40);
  });
});
