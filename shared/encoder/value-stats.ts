/**
 * The distinct values of a categorical column seen while fitting: each value's training count
 * and, for target columns, per binary task its labelled rows and positives. Values are numbered
 * in the order first seen and their statistics kept in flat typed arrays, not an object per
 * value: an id column of 900,000 values costs its key map and about 40 bytes a value, where a
 * small array per value would cost five times the memory of the map alone.
 */
export class ValueStats {
  /** Value -> its number. */
  private readonly index = new Map<string, number>();
  private counts = new Float64Array(1024);
  /**
   * [labelled, positives] per task, per value: 2 · tasks numbers from 2 · tasks · number;
   * allocated with the first labelled row (a fit without labels never needs it).
   */
  private sums = new Float64Array(0);
  /** The same for rows whose value is missing, and for all rows. */
  readonly missing: Float64Array;
  readonly total: Float64Array;
  /** Whether any row came with labels. */
  labelled = false;

  /** `tasks`: the label positions (in a row's labels) to sum; none: counts only. */
  constructor(readonly tasks: readonly number[] = []) {
    const width = 2 * tasks.length;
    this.missing = new Float64Array(width);
    this.total = new Float64Array(width);
  }

  get size(): number {
    return this.index.size;
  }

  /** Counts one row's value (null: missing, which only label sums keep) with its labels. */
  add(key: string | null, labels?: ArrayLike<number>): void {
    let at = -1;
    if (key !== null) {
      at = this.index.get(key) ?? -1;
      if (at < 0) {
        at = this.index.size;
        this.index.set(key, at);
        if (at === this.counts.length) this.grow();
      }
      this.counts[at]! += 1;
    }
    if (!labels || this.tasks.length === 0) return;
    const width = 2 * this.tasks.length;
    if (!this.labelled) {
      this.labelled = true;
      this.sums = new Float64Array(this.counts.length * width);
    }
    const sums = at < 0 ? this.missing : this.sums;
    const base = at < 0 ? 0 : at * width;
    this.tasks.forEach((task, t) => {
      const y = labels[task]!;
      if (Number.isNaN(y)) return;
      sums[base + 2 * t]! += 1;
      sums[base + 2 * t + 1]! += y;
      this.total[2 * t]! += 1;
      this.total[2 * t + 1]! += y;
    });
  }

  /**
   * The counts and label sums of `keys`, in their order (0 for a key never seen): `sums` holds
   * [labelled, positives] per task, 2 · tasks numbers per key.
   */
  select(keys: readonly string[]): { counts: Float64Array; sums: Float64Array } {
    const width = 2 * this.tasks.length;
    const counts = new Float64Array(keys.length);
    const sums = new Float64Array(keys.length * width);
    keys.forEach((key, i) => {
      const at = this.index.get(key);
      if (at === undefined) return;
      counts[i] = this.counts[at]!;
      if (this.labelled) sums.set(this.sums.subarray(at * width, (at + 1) * width), i * width);
    });
    return { counts, sums };
  }

  /** Rows with a value (missing ones excluded). */
  rowsWithValue(): number {
    let sum = 0;
    for (let i = 0; i < this.index.size; i++) sum += this.counts[i]!;
    return sum;
  }

  /** Every value with its count, in the order first seen. */
  *entries(): IterableIterator<[string, number]> {
    for (const [key, at] of this.index) yield [key, this.counts[at]!];
  }

  private grow(): void {
    const counts = new Float64Array(this.counts.length * 2);
    counts.set(this.counts);
    this.counts = counts;
    if (!this.labelled) return;
    const sums = new Float64Array(this.sums.length * 2);
    sums.set(this.sums);
    this.sums = sums;
  }
}
