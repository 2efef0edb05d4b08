/**
 * One optimiser over all of a network's parameters, in one of three ways:
 *
 * - whole table: tfjs's Adam (or Adagrad) over every parameter, the embedding table included, so
 *   a step costs O(vocabulary) (`embeddingUpdates: "dense"`);
 * - sparse rows: Adam in plain JS (./host-adam.ts) on the CPU backends, tfjs's optimiser
 *   elsewhere or for Adagrad, over the dense parameters, and lazy Adam / sparse Adagrad
 *   (./sparse-optimizer.ts) over the embedding rows a batch reads, the gradients computed in
 *   this thread;
 * - sparse rows over worker threads: the same updates, each batch's gradients computed in shards
 *   by `workers` threads (./parallel-optimizer.ts).
 */
import * as tf from "@tensorflow/tfjs";
import type { TrainingState } from "../artifact/checkpoint.ts";
import type { NamedArray } from "../artifact/float-pack.ts";
import type { WeightingKind } from "../artifact/trained-model.ts";
import type { NetworkConfig } from "../models/network.ts";
import type { Params } from "../models/types.ts";
import type { EmbeddingUpdates, GradientSource, LabelledBatch, StepLoss } from "./batch.ts";
import {
  batchArrays,
  batchObjective,
  batchTensors,
  type L2Penalty,
  l2Penalty,
  type Objective,
  shardGradients,
} from "./batch-gradients.ts";
import {
  denseOptimizer,
  type OptimizerKind,
  type OptimizerState,
  type ScheduledOptimizer,
} from "./dense-optimizer.ts";
import { HostAdam, type HostGradient } from "./host-adam.ts";
import { checkWorkers, parallelGradients } from "./parallel-optimizer.ts";
import { SparseOptimizer } from "./sparse-optimizer.ts";
import { type TaskWeighting, taskWeighting } from "./task-weighting.ts";

/** What the optimiser needs of the training options (./train-network.ts TrainOptions). */
export interface OptimizerOptions {
  /** The peak learning rate (the schedule warms up to it and decays from it). */
  learningRate: number;
  /** The dense parameters' optimiser; default "adam". */
  optimizer?: OptimizerKind;
  /**
   * The embedding table's with sparse-row updates: lazy Adam or sparse Adagrad. Default:
   * `optimizer`. (`embeddingUpdates: "dense"`, a comparison path, runs `optimizer` over it all.)
   */
  embeddingOptimizer?: OptimizerKind;
  /** The embedding table's peak learning rate, on the same schedule. Default: `learningRate`. */
  embeddingLearningRate?: number;
  /**
   * Rows (a [vocabSize] mask) that take sparse Adagrad at `embeddingLearningRate` while the rest
   * take lazy Adam at `learningRate` (with `embeddingOptimizer` adam).
   */
  embeddingAdagradRows?: Uint8Array;
  taskWeights: Record<string, number>;
  /** How task losses combine (./task-weighting.ts); default "static" (taskWeights as given). */
  taskWeighting?: WeightingKind;
  /**
   * Weight of a listwise ranking loss within groups, added for every binary head (0: off).
   * Batches are then made of whole groups.
   */
  rankingLoss?: number;
  /**
   * L2 penalty (λ/2·Σw²) on the embedding rows each batch reads and on dense kernels; a number
   * sets both; default 0.
   */
  l2?: L2Penalty | number;
  /**
   * How the embedding table learns: "sparse" (default) updates only the rows each batch
   * touches, so a step costs the same at any vocabulary size; "dense" runs the optimiser over
   * the whole table every step (O(vocabulary) per step; kept for comparison).
   */
  embeddingUpdates?: EmbeddingUpdates;
  /**
   * Threads computing each mini-batch's gradients (./parallel-optimizer.ts): 1 (default) trains
   * in this thread; n splits every batch into n shards, n-1 of them in worker threads, and
   * applies one update with the averaged gradients. Sparse embedding updates only; no ranking loss.
   */
  workers?: number;
}

/** One optimiser over all of a network's parameters. */
export interface NetworkOptimizer {
  /** One training step on the rows `idx` of `data`; returns the batch's losses. */
  step(data: LabelledBatch, idx: Int32Array): StepLoss;
  /** Brings the parameters up to date (sparse updates keep the embedding table outside tfjs while training). */
  sync(): void;
  /** The optimiser's accumulators, as checkpoint arrays and scalars. */
  exportState(): Pick<TrainingState, "arrays" | "scalars">;
  importState(state: Pick<TrainingState, "arrays" | "scalars">): void;
  setLearningRate(lr: number): void;
  dispose(): void;
}

/** What every strategy is built from. */
interface Setup {
  params: Params;
  config: NetworkConfig;
  weighting: TaskWeighting;
  objective: Objective;
  /** tfjs's optimiser, of the kind asked for, under a settable learning rate. */
  scheduled: ScheduledOptimizer;
}

/**
 * tfjs's Adam (or Adagrad) over the dense parameters, and sparse updates of the same kind over
 * the embedding table unless `embeddingUpdates` is "dense" (then tfjs's optimiser covers the
 * table too); with `workers` > 1 each batch's gradients are computed over worker threads.
 */
export function createNetworkOptimizer(
  params: Params,
  config: NetworkConfig,
  options: OptimizerOptions & {
    /** Default: static weights from taskWeights. */
    weighting?: TaskWeighting;
  },
): NetworkOptimizer {
  const kind = options.optimizer ?? "adam";
  const weighting = options.weighting ?? taskWeighting("static", config.heads, options.taskWeights);
  const l2 = l2Penalty(options.l2);
  const objective = batchObjective(config, weighting, options.rankingLoss ?? 0, l2);
  const setup: Setup = {
    params,
    config,
    weighting,
    objective,
    scheduled: denseOptimizer(kind, options.learningRate),
  };
  const workers = options.workers ?? 1;
  checkWorkers(workers, options);
  if (options.embeddingUpdates === "dense") return wholeTableOptimizer(setup);
  const dense = denseUpdater(setup.scheduled, kind, options.learningRate, l2.kernel);
  // The kernels' penalty on the autodiff tape only where the dense update does not apply it.
  const tapeL2 = dense.kernelL2 > 0 ? { ...l2, kernel: 0 } : l2;
  const tapeObjective =
    tapeL2 === l2 ? objective : batchObjective(config, weighting, options.rankingLoss ?? 0, tapeL2);
  const mixed = options.embeddingAdagradRows !== undefined;
  const embeddingRate = options.embeddingLearningRate ?? options.learningRate;
  const lazy = params.embedding
    ? new SparseOptimizer(params.embedding, {
        learningRate: mixed ? options.learningRate : embeddingRate,
        rule: options.embeddingOptimizer ?? kind,
        ...(mixed ? { adagradRows: options.embeddingAdagradRows, adagradLearningRate: embeddingRate } : {}),
      })
    : null;
  const denseVars = [
    ...Object.entries(params)
      .filter(([name]) => name !== "embedding")
      .map(([, v]) => v),
    ...weighting.variables,
  ];
  const source =
    workers > 1
      ? parallelGradients({
          workers,
          config,
          params,
          vars: denseVars,
          lazy,
          weighting,
          weightingKind: options.taskWeighting ?? "static",
          taskWeights: options.taskWeights,
          l2: tapeL2,
        })
      : {
          gradients: inThreadGradients({ ...setup, objective: tapeObjective }, denseVars, lazy),
          dispose: () => {},
        };
  return sparseRowsOptimizer(
    dense,
    denseVars,
    lazy,
    source,
    mixed ? 1 : embeddingRate / options.learningRate,
  );
}

/** The dense parameters' update in the sparse-rows strategies. */
interface DenseUpdater {
  /** Updates; returns the value of the L2 penalties it applied itself. */
  applyGradients(gradients: readonly HostGradient[]): number;
  /** λ of the kernels' L2 penalty this update applies off the tape (0: the objective carries it). */
  readonly kernelL2: number;
  setLearningRate(lr: number): void;
  exportState(): OptimizerState;
  importState(state: OptimizerState): void;
  dispose(): void;
}

/**
 * Adam in plain JS where the backend's tensors are in this process's memory (wasm, cpu), the
 * same update with a fraction of the kernel calls; tfjs's optimiser elsewhere (webgpu keeps the
 * gradients on the device) and for Adagrad.
 */
function denseUpdater(
  scheduled: ScheduledOptimizer,
  kind: OptimizerKind,
  learningRate: number,
  kernelL2: number,
): DenseUpdater {
  const backend = tf.getBackend();
  if (kind === "adam" && (backend === "wasm" || backend === "cpu")) {
    const host = new HostAdam(learningRate);
    return {
      kernelL2,
      applyGradients: (gradients) => host.applyGradients(gradients),
      setLearningRate: (lr) => host.setLearningRate(lr),
      exportState: () => host.exportState(),
      importState: (state) => host.importState(state),
      dispose: () => {
        host.dispose();
        scheduled.optimizer.dispose();
      },
    };
  }
  return {
    kernelL2: 0,
    applyGradients: (gradients) => {
      tf.tidy(() => {
        scheduled.optimizer.applyGradients(
          gradients.map(({ variable, gradient }) => ({
            name: variable.name,
            tensor: gradient instanceof Float32Array ? tf.tensor(gradient, variable.shape) : gradient,
          })),
        );
      });
      return 0;
    },
    setLearningRate: (lr) => scheduled.setLearningRate(lr),
    exportState: () => scheduled.exportState(),
    importState: (state) => scheduled.importState(state),
    dispose: () => scheduled.optimizer.dispose(),
  };
}

/** tfjs's optimiser over every parameter, the embedding table included (O(vocabulary) a step). */
function wholeTableOptimizer({ params, config, weighting, objective, scheduled }: Setup): NetworkOptimizer {
  const adam = scheduled.optimizer;
  const embedding = params.embedding;
  const varList = [...Object.values(params), ...weighting.variables];
  return {
    step: (data, idx) => {
      let tasks: tf.Tensor | undefined;
      const loss = tf.tidy(() => {
        // Read shares of the whole table (vocabulary-sized) only when the penalty needs them.
        const shares = embedding && objective.needsReadShares ? config.vocabSize : undefined;
        const inputs = batchTensors(config, data, idx, shares);
        const value = adam.minimize(
          () => {
            const { total, perTask } = objective(params, inputs);
            tasks = tf.keep(perTask);
            return total;
          },
          true,
          varList,
        );
        return value ?? tf.scalar(Number.NaN);
      });
      return readLosses(loss, tasks);
    },
    sync: () => {},
    exportState: () => denseState(scheduled),
    importState: (state) => scheduled.importState(fromDenseState(state)),
    setLearningRate: scheduled.setLearningRate,
    dispose: () => adam.dispose(),
  };
}

/**
 * `dense` over `denseVars`, and the sparse optimiser (when the network has an embedding table)
 * over the rows each batch read, from the gradients `source` computes.
 */
function sparseRowsOptimizer(
  dense: DenseUpdater,
  denseVars: readonly tf.Variable[],
  lazy: SparseOptimizer | null,
  source: { gradients: GradientSource; dispose(): void },
  /** The embedding table's rate over the dense parameters' (the schedule scales both). */
  embeddingRatio: number,
): NetworkOptimizer {
  return {
    step: (data, idx) => {
      const g = source.gradients(data, idx);
      const named: HostGradient[] = [];
      denseVars.forEach((variable, i) => {
        const gradient = g.vars[i];
        const l2 = variable.name.endsWith("/kernel") ? dense.kernelL2 : 0;
        if (gradient) named.push({ variable, gradient, l2 });
      });
      const penalty = dense.applyGradients(named);
      tf.dispose(g.vars.filter((t): t is tf.Tensor => t instanceof tf.Tensor));
      lazy?.apply(g.rows, g.table);
      return { ...g.loss, total: g.loss.total + penalty };
    },
    sync: () => lazy?.writeBack(),
    exportState: () => {
      const state = denseState(dense);
      if (!lazy) return state;
      const sparse = lazy.exportState();
      return {
        arrays: {
          ...state.arrays,
          "sparse/m": { shape: [sparse.m.length], values: sparse.m },
          "sparse/v": { shape: [sparse.v.length], values: sparse.v },
        },
        scalars: { ...state.scalars, sparse: sparse.scalars },
      };
    },
    importState: (state) => {
      dense.importState(fromDenseState(state));
      lazy?.importState({
        m: state.arrays["sparse/m"]!.values,
        v: state.arrays["sparse/v"]!.values,
        scalars: state.scalars.sparse ?? [],
      });
    },
    setLearningRate: (lr) => {
      dense.setLearningRate(lr);
      lazy?.setLearningRate(lr * embeddingRatio);
    },
    dispose: () => {
      dense.dispose();
      source.dispose();
    },
  };
}

/** A batch's gradients computed in this thread: the dense ones, and the embedding rows it read. */
function inThreadGradients(
  { params, config, objective }: Setup,
  denseVars: readonly tf.Variable[],
  lazy: SparseOptimizer | null,
): GradientSource {
  return (data, idx) => {
    const arrays = batchArrays(config, data, idx);
    const lookup = lazy ? lazy.lookup(arrays.ids) : NO_ROWS;
    const g = shardGradients(objective, config, params, denseVars, {
      arrays: lazy ? { ...arrays, ids: lookup.local } : arrays,
      n: idx.length,
      tableRows: lookup.rows.length,
      tableValues: lookup.values,
    });
    // A copy: the backend may reuse the tensor's memory once it is disposed.
    const table = g.table ? (g.table.dataSync() as Float32Array).slice() : new Float32Array(0);
    g.table?.dispose();
    return { loss: readLosses(g.loss, g.tasks), vars: g.vars, rows: lookup.rows, table };
  };
}

const NO_ROWS = { rows: new Int32Array(0), local: new Int32Array(0), values: new Float32Array(0) };

/** tfjs optimiser slots as checkpoint arrays `dense/<i>/<slot name>`, in slot order. */
function denseState(
  optimizer: Pick<ScheduledOptimizer, "exportState">,
): Pick<TrainingState, "arrays" | "scalars"> {
  const state = optimizer.exportState();
  const arrays: Record<string, NamedArray> = {};
  state.slots.forEach((slot, i) => {
    arrays[`dense/${i}/${slot.name}`] = { shape: slot.shape, values: slot.values };
  });
  return { arrays, scalars: { dense: state.scalars } };
}

function fromDenseState(state: Pick<TrainingState, "arrays" | "scalars">): OptimizerState {
  const slots = Object.entries(state.arrays)
    .filter(([key]) => key.startsWith("dense/"))
    .map(([key, a]) => ({ index: Number(key.split("/")[1]), name: key.split("/").slice(2).join("/"), ...a }))
    .sort((a, b) => a.index - b.index)
    .map(({ name, shape, values }) => ({ name, shape, values }));
  return { slots, scalars: state.scalars.dense ?? [] };
}

function readLosses(total: tf.Tensor, tasks: tf.Tensor | undefined): StepLoss {
  const value = total.dataSync()[0]!;
  const perTask = tasks ? Float32Array.from(tasks.dataSync() as Float32Array) : new Float32Array(0);
  tf.dispose([total, ...(tasks ? [tasks] : [])]);
  return { total: value, tasks: perTask };
}
