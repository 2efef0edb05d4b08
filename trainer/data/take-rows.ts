/**
 * A batch's or a part's rows picked by index: the training and validation rows of one fold, when
 * a run averages fold networks (../train/fold-average.ts) over one encoding of the whole file, and
 * the sample permutation importance scores (../evaluate/importance.ts).
 */
import type { EncodedBatch } from "../../shared/encoder/encode.ts";
import type { EncodedPart } from "./encode-dataset.ts";

/** Rows `rows` of `batch`, in that order: its inputs copied. */
export function takeBatchRows(batch: EncodedBatch, rows: ArrayLike<number>): EncodedBatch {
  const denseWidth = batch.rows > 0 ? batch.dense.length / batch.rows : 0;
  const idWidth = batch.rows > 0 ? batch.ids.length / batch.rows : 0;
  const n = rows.length;
  const dense = new Float32Array(n * denseWidth);
  const ids = new Int32Array(n * idWidth);
  for (let i = 0; i < n; i++) {
    const r = rows[i]!;
    if (!(r >= 0 && r < batch.rows))
      throw new RangeError(`row ${r} is outside the part's ${batch.rows} rows`);
    dense.set(batch.dense.subarray(r * denseWidth, (r + 1) * denseWidth), i * denseWidth);
    ids.set(batch.ids.subarray(r * idWidth, (r + 1) * idWidth), i * idWidth);
  }
  return { rows: n, dense, ids };
}

/** Rows `rows` of `part`, in that order: inputs, labels and group hashes copied. */
export function takeRows(part: EncodedPart, rows: ArrayLike<number>): EncodedPart {
  const labels = Object.fromEntries(
    Object.entries(part.labels).map(([task, y]) => [task, Float32Array.from(rows, (r) => y[r]!)]),
  );
  const groups = part.groups ? Uint32Array.from(rows, (r) => part.groups![r]!) : null;
  return { ...takeBatchRows(part, rows), labels, groups };
}
