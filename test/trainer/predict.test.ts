/** predict / evaluate score with the exported ONNX graph, one output row per input row, in order. */
import { spawnSync } from "node:child_process";
import { mkdtemp, readdir, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { auc } from "../../trainer/core/metrics.ts";
import { loadDataset } from "../../trainer/data/load-dataset.ts";
import { readSpecFile } from "../../trainer/data/read-spec.ts";
import { evaluateModel } from "../../trainer/evaluate/evaluate-model.ts";
import { exportModelDir } from "../../trainer/export/export-model.ts";
import { openServedModel, readOptionsFor, scoreRows } from "../../trainer/predict/served-model.ts";
import { runTraining } from "../../trainer/workflows/train-and-report.ts";

const DATA = "fixtures/real-logs/aliexpress_sample.csv";
const SPEC = "fixtures/specs/aliexpress.json";
let dir = "";

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "mtrank-predict-"));
  await runTraining({ data: DATA, spec: SPEC, arch: "shared-bottom", out: dir, epochs: 1, seed: 5 });
  await exportModelDir(dir);
}, 120_000);

describe("predict CLI", () => {
  it("writes a header and one row per input row with each head's value, in input order", async () => {
    const out = join(dir, "pred.csv");
    const result = spawnSync(
      "node_modules/.bin/tsx",
      ["trainer/cli/predict.ts", "--model", dir, "--data", DATA, "--spec", SPEC, "--out", out],
      { encoding: "utf8", timeout: 60_000 },
    );
    expect(result.status, result.stderr).toBe(0);
    const lines = (await readFile(out, "utf8")).trim().split("\n");
    expect(lines[0]).toBe("click,conversion");
    const data = await loadDataset(DATA, await readSpecFile(SPEC));
    expect(lines).toHaveLength(data.rows.length + 1);
    const expected = await scoreRows(await openServedModel(dir), data.rows);
    lines.slice(1).forEach((line, i) => {
      const [click, conversion] = line.split(",").map(Number);
      expect(click).toBeCloseTo(expected.click![i]!, 6);
      expect(conversion).toBeCloseTo(expected.conversion![i]!, 6);
    });
  });

  it("stops at a row cut off mid-line, naming it, and leaves no output file behind", async () => {
    const text = await readFile(DATA, "utf8");
    const lines = text.trim().split("\n");
    // The last row loses its last fields, as in a log copied while it was still being written.
    const cut = lines.at(-1)!.split(",").slice(0, 5).join(",");
    const data = join(dir, "cut.csv");
    await writeFile(data, `${[...lines.slice(0, -1), cut].join("\n")}\n`);
    const out = join(dir, "cut-pred.csv");
    const result = spawnSync(
      "node_modules/.bin/tsx",
      ["trainer/cli/predict.ts", "--model", dir, "--data", data, "--spec", SPEC, "--out", out],
      { encoding: "utf8", timeout: 60_000 },
    );
    expect(result.status).toBe(1);
    expect(result.stderr.trim()).toBe(
      `error: ${data}:${lines.length}: the row does not have one field per column of the header`,
    );
    expect((await readdir(dir)).filter((f) => f.startsWith("cut-pred"))).toEqual([]);
  });

  it("an --out in a missing folder, or a directory, is one line, and leaves no file behind", async () => {
    for (const [out, message] of [
      [
        join(dir, "no-such-folder", "p.csv"),
        `error: --out: cannot write ${join(dir, "no-such-folder", "p.csv")} (ENOENT)`,
      ],
      [dir, `error: --out: ${dir} is a directory; name the CSV file to write`],
    ] as const) {
      const before = await readdir(dir);
      const result = spawnSync(
        "node_modules/.bin/tsx",
        ["trainer/cli/predict.ts", "--model", dir, "--data", DATA, "--spec", SPEC, "--out", out],
        { encoding: "utf8", timeout: 60_000 },
      );
      expect(result.status).toBe(1);
      expect(result.stderr.trim()).toBe(message);
      expect(await readdir(dir)).toEqual(before);
    }
  });

  /** Runs predict on `data` (written from `text`), returning its exit code, stderr and output. */
  async function predictOn(name: string, text: string, spec: string[] = ["--spec", SPEC]) {
    const data = join(dir, name);
    await writeFile(data, text);
    const out = join(dir, `${name}.pred.csv`);
    const result = spawnSync(
      "node_modules/.bin/tsx",
      ["trainer/cli/predict.ts", "--model", dir, "--data", data, ...spec, "--out", out],
      { encoding: "utf8", timeout: 60_000 },
    );
    const written = result.status === 0 ? (await readFile(out, "utf8")).trim().split("\n") : [];
    return { status: result.status, stderr: result.stderr.trim(), written, data };
  }

  it("checks each row's features as train and evaluate do, naming the file, line and column", async () => {
    const [header, ...rows] = (await readFile(DATA, "utf8")).trim().split("\n");
    const columns = header!.split(",");
    const at = columns.indexOf("numerical_3");
    // A CSV without a feature's column: every row would have read it as missing.
    const without = (line: string) =>
      line
        .split(",")
        .filter((_, i) => i !== at)
        .join(",");
    const noColumn = await predictOn(
      "no-column.csv",
      `${[header!, ...rows.slice(0, 5)].map(without).join("\n")}\n`,
    );
    expect(noColumn.status).toBe(1);
    expect(noColumn.stderr).toBe(`error: ${noColumn.data}: features.numerical_3: no column "numerical_3"`);
    // A value that is no number, on the file's third line.
    const cells = rows[1]!.split(",");
    cells[at] = "NaN";
    const bad = await predictOn(
      "bad-number.csv",
      `${[header, rows[0], cells.join(","), rows[2]].join("\n")}\n`,
    );
    expect(bad.status).toBe(1);
    expect(bad.stderr).toBe(`error: ${bad.data}:3: column "numerical_3": "NaN" is not a number`);
  });

  it("reads a .jsonl file as JSON lines although the model was trained on CSV, with the same scores", async () => {
    const data = await loadDataset(DATA, await readSpecFile(SPEC));
    const rows = data.rows.slice(0, 40);
    const jsonl = `${rows.map((row) => JSON.stringify(row)).join("\n")}\n`;
    // The model's own spec.json (format "csv") and no --spec.
    const result = await predictOn("rows.jsonl", jsonl, []);
    expect(result.status, result.stderr).toBe(0);
    expect(result.written).toHaveLength(rows.length + 1);
    const expected = await scoreRows(await openServedModel(dir), rows);
    result.written.slice(1).forEach((line, i) => {
      expect(Number(line.split(",")[0])).toBeCloseTo(expected.click![i]!, 6);
    });
    // An object where a category belongs is an error there too, not a missing value.
    const object = { ...rows[0], categorical_2: { a: 1 } };
    const refused = await predictOn("object.jsonl", `${JSON.stringify(object)}\n`, []);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/object\.jsonl:1: column "categorical_2": \{"a":1\} is not a category/);
  });

  it("refuses --int8 when no int8 graph was exported", () => {
    const result = spawnSync(
      "node_modules/.bin/tsx",
      ["trainer/cli/predict.ts", "--model", dir, "--data", DATA, "--out", join(dir, "x.csv"), "--int8"],
      { encoding: "utf8", timeout: 60_000 },
    );
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/model\.int8\.onnx/);
  });
});

describe("reading a file without a spec", () => {
  it("guesses JSON lines from the name in any case, .gz aside; anything else is CSV", () => {
    for (const name of ["a.jsonl", "A.JSONL", "b.ndjson", "c.json.gz", "D.Jsonl.GZ"])
      expect(readOptionsFor(null, name).format, name).toBe("jsonl");
    for (const name of ["a.csv", "A.CSV.GZ", "part-0001", "jsonl.csv"])
      expect(readOptionsFor(null, name).format, name).toBe("csv");
  });
});

describe("evaluate", () => {
  it("reports per-task metrics computed from the ONNX outputs", async () => {
    const model = await openServedModel(dir);
    const spec = await readSpecFile(SPEC);
    const report = await evaluateModel(model, DATA, spec);
    const data = await loadDataset(DATA, spec);
    const scores = await scoreRows(model, data.rows);
    expect(report.rows).toBe(data.rows.length);
    expect(report.tasks.click!.auc).toBeCloseTo(auc(data.labels.click!, scores.click!), 10);
    expect(report.tasks.click!.count).toBe(data.rows.length);
    expect(report.tasks.click).toHaveProperty("gauc"); // the spec groups rows by search_id
    // NDCG's groups: two rows or more, and a row with a gain (a click or a conversion).
    const rows = new Map<unknown, number[]>();
    for (const [i, g] of data.groups!.entries()) rows.set(g, [...(rows.get(g) ?? []), i]);
    const scored = [...rows.values()].filter(
      (r) => r.length >= 2 && r.some((i) => data.labels.click![i]! > 0 || data.labels.conversion![i]! > 0),
    );
    expect(scored.length).toBeLessThan(rows.size);
    expect(report.ranking!.groups).toBe(scored.length);
    expect(report.ranking!.ndcg10).toBeGreaterThan(0);
    expect(report.ranking!.ndcg10).toBeLessThanOrEqual(1);
    expect(report.ranking!.oracleNdcg10).toBeUndefined(); // real data: no truth columns
  });
});

describe("evaluate on simulated data", () => {
  it("compares with the oracle: true-probability AUC and NDCG against the true order", async () => {
    const { writeSimulation } = await import("../../trainer/simulate/simulator.ts");
    const work = await mkdtemp(join(tmpdir(), "mtrank-eval-sim-"));
    const sim = await writeSimulation(work, {
      seed: 3,
      users: 200,
      items: 100,
      requests: 600,
      listSize: 8,
      latentDim: 4,
    });
    const out = join(work, "model");
    await runTraining({
      data: sim.dataPath,
      spec: sim.specPath,
      arch: "shared-bottom",
      out,
      epochs: 2,
      seed: 3,
    });
    await exportModelDir(out);
    const report = await evaluateModel(
      await openServedModel(out),
      sim.dataPath,
      await readSpecFile(sim.specPath),
    );
    const data = await loadDataset(sim.dataPath, await readSpecFile(sim.specPath));
    expect(report.tasks.click!.oracleAuc).toBeCloseTo(auc(data.labels.click!, data.truth.click!), 12);
    for (const value of [report.ranking!.oracleNdcg10, report.ranking!.inputOracleNdcg10]) {
      expect(value).toBeGreaterThan(0);
      expect(value).toBeLessThanOrEqual(1);
    }
  }, 120_000);
});
