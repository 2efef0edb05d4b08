/**
 * Out-of-fold target columns: a training row's target column never reads its own label (nor, with
 * groups, its group's), and equals the shrunk rate over the other folds; the streaming loader
 * writes them on the training part and the encoder's full rates on the validation part.
 */
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { compileEncoder, type EncodedBatch } from "../../shared/encoder/encode.ts";
import { DEFAULT_FIT_OPTIONS, fitEncoder } from "../../shared/encoder/fit.ts";
import type { CategoricalState, EncoderState } from "../../shared/encoder/state.ts";
import { parseSpec } from "../../shared/spec.ts";
import { encodeDataset } from "../../trainer/data/encode-dataset.ts";
import { TARGET_FOLDS, targetFolds, writeOutOfFoldTargets } from "../../trainer/data/target-folds.ts";

const spec = parseSpec({
  format: "csv",
  features: [
    { name: "c", type: "categorical", targetEncoding: true, frequency: false },
    { name: "x", type: "numeric", buckets: 0 },
  ],
  tasks: [{ name: "click", type: "binary", column: "y" }],
});

function feature(state: EncoderState): CategoricalState {
  return state.features.find((f) => f.name === "c") as CategoricalState;
}

/** The column by brute force: the shrunk rate over the rows of the same id outside the row's fold. */
function bruteForce(
  state: EncoderState,
  batch: EncodedBatch,
  labels: Float32Array,
  folds: Uint8Array,
): number[] {
  const f = feature(state);
  const { prior, mean, std } = f.target!.tasks[0]!;
  const m = f.target!.smoothing;
  const id = (r: number) => batch.ids[r * state.idSlots + f.slot]!;
  return Array.from({ length: batch.rows }, (_, r) => {
    let n = 0;
    let s = 0;
    for (let q = 0; q < batch.rows; q++)
      if (id(q) === id(r) && folds[q] !== folds[r] && !Number.isNaN(labels[q]!)) {
        n++;
        s += labels[q]!;
      }
    return ((s + m * prior) / (n + m) - mean) / std;
  });
}

function column(state: EncoderState, batch: EncodedBatch): number[] {
  const at = feature(state).target!.denseOffset;
  return Array.from({ length: batch.rows }, (_, r) => batch.dense[r * state.denseSize + at]!);
}

const Rows = fc.array(
  fc.record({ c: fc.constantFrom("a", "b", "c", "d", ""), y: fc.constantFrom(0, 1, Number.NaN) }),
  {
    minLength: 5,
    maxLength: 80,
  },
);

function fitted(rows: { c: string; y: number }[]) {
  const features = rows.map((r, i) => ({ c: r.c, x: i }));
  const labels = Float32Array.from(rows.map((r) => r.y));
  const state = fitEncoder(
    spec,
    features,
    DEFAULT_FIT_OPTIONS,
    rows.map((r) => [r.y]),
  );
  const batch = compileEncoder(state).encodeRows(features);
  return { state, batch, labels };
}

describe("writeOutOfFoldTargets", () => {
  it("gives each training row the shrunk rate over the other folds (by row, and by group)", () => {
    fc.assert(
      fc.property(Rows, fc.integer({ min: 0, max: 1000 }), fc.boolean(), (rows, seed, grouped) => {
        fc.pre(rows.some((r) => !Number.isNaN(r.y)));
        const { state, batch, labels } = fitted(rows);
        const groups = grouped ? Uint32Array.from(rows, (_, i) => Math.floor(i / 4) * 7919) : null;
        writeOutOfFoldTargets(state, batch, { click: labels }, groups, seed);
        const folds = targetFolds(batch.rows, groups, seed);
        const expected = bruteForce(state, batch, labels, folds);
        column(state, batch).forEach((v, r) => {
          expect(v).toBeCloseTo(expected[r]!, 5);
        });
        if (groups)
          for (let r = 1; r < rows.length; r++)
            if (groups[r] === groups[r - 1]) expect(folds[r]).toBe(folds[r - 1]);
      }),
    );
  });

  it("never reads a row's own label", () => {
    fc.assert(
      fc.property(Rows, fc.nat(), (rows, pick) => {
        fc.pre(rows.some((r) => !Number.isNaN(r.y)));
        const { state, batch, labels } = fitted(rows);
        const r = pick % rows.length;
        const flipped = Float32Array.from(labels);
        flipped[r] = Number.isNaN(labels[r]!) ? 1 : 1 - labels[r]!;
        const a = { ...batch, dense: Float32Array.from(batch.dense) };
        const b = { ...batch, dense: Float32Array.from(batch.dense) };
        writeOutOfFoldTargets(state, a, { click: labels }, null, 5);
        writeOutOfFoldTargets(state, b, { click: flipped }, null, 5);
        expect(column(state, b)[r]).toBe(column(state, a)[r]);
      }),
    );
  });

  it("deals rows over every fold", () => {
    const folds = targetFolds(10_000, null, 1);
    const counts = new Array(TARGET_FOLDS).fill(0);
    for (const f of folds) counts[f]++;
    for (const c of counts) expect(Math.abs(c - 10_000 / TARGET_FOLDS)).toBeLessThan(300);
  });
});

describe("encodeDataset: target columns", () => {
  /** Ids a..t, the first ten likelier to click; every other row one day later. */
  function csv(n: number): string {
    const lines = ["c,x,y,t"];
    for (let i = 0; i < n; i++) {
      const c = "abcdefghijklmnopqrst"[(i * 7) % 20]!;
      const y = (c < "k" ? i % 3 !== 0 : i % 4 === 0) ? 1 : 0;
      lines.push(`${c},${i},${y},${i}`);
    }
    return `${lines.join("\n")}\n`;
  }

  it.each([
    ["random", {}],
    ["time", { timeColumn: "t" }],
  ])("%s split: training rows read out-of-fold rates, validation rows the encoder's", async (_, extra) => {
    const path = join(await mkdtemp(join(tmpdir(), "mtrank-target-")), "d.csv");
    await writeFile(path, csv(600));
    const data = await encodeDataset(path, spec, { validFraction: 0.2, seed: 4, ...extra });
    const { encoder, train, valid } = data;
    expect(feature(encoder).target?.tasks[0]?.task).toBe("click");
    // Validation: exactly what the compiled encoder (and so the worker) writes for the same ids.
    const at = feature(encoder).target!.denseOffset;
    const { rates, mean, std } = feature(encoder).target!.tasks[0]!;
    const slot = feature(encoder).slot;
    const offset = feature(encoder).offset;
    for (let r = 0; r < valid.rows; r++)
      expect(valid.dense[r * encoder.denseSize + at]).toBeCloseTo(
        (rates[valid.ids[r * encoder.idSlots + slot]! - offset]! - mean) / std,
        5,
      );
    // Training: out of fold, as computed by brute force from the training part itself.
    const expected = bruteForce(encoder, train, train.labels.click!, targetFolds(train.rows, null, 4));
    const actual = column(encoder, train);
    actual.forEach((v, r) => {
      expect(v).toBeCloseTo(expected[r]!, 5);
    });
    // And not the full rates (which would carry each row's own label).
    const outOfFold = actual.filter(
      (v, r) => Math.abs(v - (rates[train.ids[r * encoder.idSlots + slot]! - offset]! - mean) / std) > 1e-4,
    );
    expect(outOfFold.length).toBeGreaterThan(train.rows / 2);
  });

  it("deals into the plan's folds: fold networks validate on rows whose rates never read their own labels", async () => {
    const path = join(await mkdtemp(join(tmpdir(), "mtrank-target-")), "d.csv");
    await writeFile(path, csv(600));
    const { encoder, train, valid } = await encodeDataset(path, spec, {
      validFraction: 0,
      seed: 6,
      targetFolds: 3,
    });
    expect([train.rows, valid.rows]).toEqual([600, 0]);
    const folds = targetFolds(train.rows, null, 6, 3);
    const expected = bruteForce(encoder, train, train.labels.click!, folds);
    column(encoder, train).forEach((v, r) => {
      expect(v).toBeCloseTo(expected[r]!, 5);
    });
    // Five folds (the default) give other columns: the dealing follows the plan.
    const five = bruteForce(encoder, train, train.labels.click!, targetFolds(train.rows, null, 6));
    expect(column(encoder, train).some((v, r) => Math.abs(v - five[r]!) > 1e-3)).toBe(true);
  });
});
