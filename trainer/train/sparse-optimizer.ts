/**
 * Sparse training of the embedding table: a batch reads only the rows its ids name, and lazy Adam
 * (or sparse Adagrad) updates only those rows, so the cost of a step does not grow with the
 * vocabulary size.
 *
 * Dense Adam over a [V, E] table costs O(V·E) per step twice over: the gradient of the gather is
 * a dense [V, E] tensor (UnsortedSegmentSum over all V rows), and Adam then reads and writes
 * every row's value and both moments. Here instead:
 *
 *   lookup(ids)  ids [n·C] -> the batch's unique rows [U], each id's local row in [0, U), and
 *                those rows' values [U, E]: the network gathers from this small table with the
 *                local ids, so the gradient it returns is already one row per unique id [U, E]
 *   apply(lookup, grad [U, E])  lazy Adam on those U rows only
 *
 * Lazy Adam (as LazyAdamOptimizer in TensorFlow): every row keeps its own moments m, v; a step
 * updates the moments and values of the rows the batch touched, and leaves the other rows alone
 * (their moments do not decay). Bias correction uses the global step t, counted over all steps:
 *
 *   m = β1·m + (1-β1)·g     v = β2·v + (1-β2)·g²
 *   w -= lr · (m / (1-β1^t)) / (sqrt(v / (1-β2^t)) + ε)
 *
 * which is tf.train.adam's update (ε outside the square root, default 1e-7 as tfjs's backends),
 * so a step that touches every row is a dense Adam step. With `rule: "adagrad"` the same rows get
 * sparse Adagrad instead (tf.train.adagrad's update, accumulator starting at 0.1):
 *
 *   a += g²     w -= lr · g / sqrt(a + ε)
 *
 * With `adagradRows`, the rows it marks take sparse Adagrad at `adagradLearningRate` and the
 * others `rule` (./embedding-rules.ts marks the rows of id-like features).
 *
 * The table's master copy is a Float32Array here; `writeBack` copies it into the tf.Variable
 * (once per epoch, before validation: the variable is not read while training).
 */
import * as tf from "@tensorflow/tfjs";

/** tf.train.adagrad's default initial accumulator value. */
const ADAGRAD_INITIAL = 0.1;

export type SparseRule = "adam" | "adagrad";

export interface SparseOptimizerOptions {
  learningRate: number;
  /** Default "adam" (lazy Adam). */
  rule?: SparseRule;
  /** Rows (1 in a [V] mask) that take sparse Adagrad whatever `rule` says. */
  adagradRows?: Uint8Array;
  /** Those rows' peak rate (the schedule scales it with learningRate). Default: learningRate. */
  adagradLearningRate?: number;
  beta1?: number;
  beta2?: number;
  epsilon?: number;
}

/** One batch's view of the table: the rows it touches and its ids renumbered into them. */
export interface RowLookup {
  /** Unique table rows, in order of first appearance in the batch. */
  rows: Int32Array;
  /** Every id of the batch as its index into `rows`. */
  local: Int32Array;
  /** Values of `rows`, [rows.length, dim] row-major. */
  values: Float32Array;
}

export class SparseOptimizer {
  readonly vocabSize: number;
  readonly dim: number;
  /** Steps taken (the global step used for bias correction). */
  step = 0;
  private readonly table: Float32Array;
  private readonly m: Float32Array;
  private readonly v: Float32Array;
  /** Row -> its index in the current batch's `rows`, -1 when absent (reset after each lookup). */
  private readonly slot: Int32Array;
  private lr: number;
  private readonly rule: SparseRule;
  private readonly adagradRows: Uint8Array | null;
  /** The Adagrad rows' rate over `lr`. */
  private readonly adagradScale: number;
  private readonly beta1: number;
  private readonly beta2: number;
  private readonly epsilon: number;
  private beta1Power = 1;
  private beta2Power = 1;

  constructor(
    private readonly variable: tf.Variable,
    options: SparseOptimizerOptions,
  ) {
    if (variable.shape.length !== 2)
      throw new Error(`SparseOptimizer: expects a [V, E] table, got [${variable.shape}]`);
    [this.vocabSize, this.dim] = variable.shape as [number, number];
    this.table = Float32Array.from(variable.dataSync() as Float32Array);
    this.rule = options.rule ?? "adam";
    this.adagradRows = this.rule === "adam" ? (options.adagradRows ?? null) : null;
    if (this.adagradRows && this.adagradRows.length !== this.vocabSize)
      throw new Error(
        `SparseOptimizer: adagradRows has ${this.adagradRows.length} rows, the table ${this.vocabSize}`,
      );
    this.adagradScale = (options.adagradLearningRate ?? options.learningRate) / options.learningRate;
    // Adagrad keeps one accumulator per value (in v), Adam two moments.
    this.m = new Float32Array(this.rule === "adam" ? this.table.length : 0);
    this.v = new Float32Array(this.table.length).fill(this.rule === "adagrad" ? ADAGRAD_INITIAL : 0);
    this.adagradRows?.forEach((adagrad, row) => {
      if (adagrad) this.v.fill(ADAGRAD_INITIAL, row * this.dim, (row + 1) * this.dim);
    });
    this.slot = new Int32Array(this.vocabSize).fill(-1);
    this.lr = options.learningRate;
    this.beta1 = options.beta1 ?? 0.9;
    this.beta2 = options.beta2 ?? 0.999;
    this.epsilon = options.epsilon ?? 1e-7;
  }

  /** The unique rows of a batch's ids, the ids renumbered into them, and those rows' values. */
  lookup(ids: Int32Array): RowLookup {
    const { dim, table, vocabSize } = this;
    const slot = this.slot;
    const local = new Int32Array(ids.length);
    const order = new Int32Array(ids.length);
    let count = 0;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      if (!(id >= 0 && id < vocabSize))
        throw new Error(`SparseOptimizer: id ${id} is outside the table [0, ${vocabSize})`);
      let s = slot[id]!;
      if (s < 0) {
        s = count++;
        slot[id] = s;
        order[s] = id;
      }
      local[i] = s;
    }
    const rows = order.slice(0, count);
    const values = new Float32Array(count * dim);
    for (let r = 0; r < count; r++) {
      const row = rows[r]!;
      slot[row] = -1;
      const src = row * dim;
      const dst = r * dim;
      for (let k = 0; k < dim; k++) values[dst + k] = table[src + k]!;
    }
    return { rows, local, values };
  }

  /** The per-row accumulators and step counters, for a checkpoint (the table itself is the variable). */
  exportState(): { m: Float32Array; v: Float32Array; scalars: number[] } {
    return {
      m: this.m.slice(),
      v: this.v.slice(),
      scalars: [this.step, this.beta1Power, this.beta2Power],
    };
  }

  importState(state: { m: Float32Array; v: Float32Array; scalars: number[] }): void {
    if (state.m.length !== this.m.length || state.v.length !== this.v.length)
      throw new Error("SparseOptimizer: the checkpoint's accumulators do not fit this table");
    this.m.set(state.m);
    this.v.set(state.v);
    [this.step, this.beta1Power, this.beta2Power] = state.scalars as [number, number, number];
  }

  /** The rate of the next steps (a schedule sets it before each step). */
  setLearningRate(lr: number): void {
    this.lr = lr;
  }

  /** One step on `rows`: `grad` [rows.length, dim] is the loss gradient for them. */
  apply(rows: Int32Array, grad: Float32Array): void {
    if (grad.length !== rows.length * this.dim)
      throw new Error(
        `SparseOptimizer: gradient of ${grad.length} values for ${rows.length} rows of ${this.dim}`,
      );
    this.step++;
    const mask = this.adagradRows;
    if (this.rule === "adagrad") this.applyAdagrad(rows, grad, this.lr);
    else if (!mask) this.applyAdam(rows, grad);
    else {
      this.applyAdam(rows, grad, (row) => mask[row] === 0);
      this.applyAdagrad(rows, grad, this.lr * this.adagradScale, (row) => mask[row] === 1);
    }
  }

  private applyAdagrad(
    rows: Int32Array,
    grad: Float32Array,
    lr: number,
    keep?: (row: number) => boolean,
  ): void {
    const { table, epsilon } = this;
    const acc = this.v;
    forEachValue(rows, this.dim, keep, (i, gi) => {
      const g = grad[gi]!;
      const a = acc[i]! + g * g;
      acc[i] = a;
      table[i] = table[i]! - (lr * g) / Math.sqrt(a + epsilon);
    });
  }

  private applyAdam(rows: Int32Array, grad: Float32Array, keep?: (row: number) => boolean): void {
    const { table, beta1, beta2, epsilon } = this;
    const m = this.m;
    const v = this.v;
    this.beta1Power *= beta1;
    this.beta2Power *= beta2;
    // w -= lr·(m/c1) / (sqrt(v/c2) + ε), with c = 1 - β^t
    const stepSize = this.lr / (1 - this.beta1Power);
    const vScale = 1 / Math.sqrt(1 - this.beta2Power);
    const g1 = 1 - beta1;
    const g2 = 1 - beta2;
    forEachValue(rows, this.dim, keep, (i, gi) => {
      const g = grad[gi]!;
      const mi = beta1 * m[i]! + g1 * g;
      const vi = beta2 * v[i]! + g2 * g * g;
      m[i] = mi;
      v[i] = vi;
      table[i] = table[i]! - (stepSize * mi) / (Math.sqrt(vi) * vScale + epsilon);
    });
  }

  /** Copies the trained table into the variable (before the variable is read: validation, saving). */
  writeBack(): void {
    tf.tidy(() => {
      this.variable.assign(tf.tensor2d(this.table.slice(), [this.vocabSize, this.dim]));
    });
  }

  /** The current values of the table (a view; do not keep it across steps). */
  values(): Float32Array {
    return this.table;
  }
}

/** Calls f(table index, gradient index) for every value of the batch's rows. */
function forEachValue(
  rows: Int32Array,
  dim: number,
  keep: ((row: number) => boolean) | undefined,
  f: (i: number, gi: number) => void,
): void {
  for (let r = 0; r < rows.length; r++) {
    if (keep && !keep(rows[r]!)) continue;
    const base = rows[r]! * dim;
    const gBase = r * dim;
    for (let k = 0; k < dim; k++) f(base + k, gBase + k);
  }
}
