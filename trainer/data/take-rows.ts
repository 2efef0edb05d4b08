/**
 * A part's rows picked by index: the training and validation rows of one fold, when a run
 * averages fold networks (../train/fold-average.ts) over one encoding of the whole file.
 */
import type { EncodedPart } from "./encode-dataset.ts";

/** Rows `rows` of `part`, in that order: inputs, labels and group hashes copied. */
export function takeRows(part: EncodedPart, rows: ArrayLike<number>): EncodedPart {
  const denseWidth = part.rows > 0 ? part.dense.length / part.rows : 0;
  const idWidth = part.rows > 0 ? part.ids.length / part.rows : 0;
  const n = rows.length;
  const dense = new Float32Array(n * denseWidth);
  const ids = new Int32Array(n * idWidth);
  const labels: Record<string, Float32Array> = Object.fromEntries(
    Object.keys(part.labels).map((task) => [task, new Float32Array(n)]),
  );
  const groups = part.groups ? new Uint32Array(n) : null;
  for (let i = 0; i < n; i++) {
    const r = rows[i]!;
    if (!(r >= 0 && r < part.rows)) throw new RangeError(`row ${r} is outside the part's ${part.rows} rows`);
    dense.set(part.dense.subarray(r * denseWidth, (r + 1) * denseWidth), i * denseWidth);
    ids.set(part.ids.subarray(r * idWidth, (r + 1) * idWidth), i * idWidth);
    for (const task in labels) labels[task]![i] = part.labels[task]![r]!;
    if (groups) groups[i] = part.groups![r]!;
  }
  return { rows: n, dense, ids, labels, groups };
}
