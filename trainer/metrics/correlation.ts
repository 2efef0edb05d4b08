/** Pearson correlation of task labels: how much the tasks share (and so what a shared bottom can share). */
import { labelledRows } from "./labelled-rows.ts";

/** Pearson's r; NaN when either side is constant (no variance to correlate). */
export function pearson(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = a.length;
  if (b.length !== n) throw new Error(`pearson: lengths differ (${n} and ${b.length})`);
  if (n === 0) return Number.NaN;
  let ma = 0;
  let mb = 0;
  for (let i = 0; i < n; i++) {
    ma += a[i]!;
    mb += b[i]!;
  }
  ma /= n;
  mb /= n;
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < n; i++) {
    const da = a[i]! - ma;
    const db = b[i]! - mb;
    sab += da * db;
    saa += da * da;
    sbb += db * db;
  }
  if (saa === 0 || sbb === 0) return Number.NaN;
  // Rounding can push |r| a hair past 1; clamp so callers may rely on the range.
  return Math.max(-1, Math.min(1, sab / Math.sqrt(saa * sbb)));
}

export interface CorrelationMatrix {
  tasks: string[];
  /** matrix[i][j] = r(tasks[i], tasks[j]); symmetric. */
  matrix: number[][];
}

/** Pairwise over the rows where both tasks have a label (a masked task has NaN where it lacks one). */
export function labelCorrelation(labels: Readonly<Record<string, ArrayLike<number>>>): CorrelationMatrix {
  const tasks = Object.keys(labels);
  const matrix = tasks.map(() => tasks.map(() => Number.NaN));
  for (let i = 0; i < tasks.length; i++) {
    for (let j = i; j < tasks.length; j++) {
      const r = pearson(...bothLabelled(labels[tasks[i]!]!, labels[tasks[j]!]!));
      matrix[i]![j] = r;
      matrix[j]![i] = r;
    }
  }
  return { tasks, matrix };
}

function bothLabelled(a: ArrayLike<number>, b: ArrayLike<number>): [ArrayLike<number>, ArrayLike<number>] {
  const rows = labelledRows(Array.from(a, (x, i) => x + b[i]!));
  return rows ? [rows.map((i) => a[i]!), rows.map((i) => b[i]!)] : [a, b];
}
