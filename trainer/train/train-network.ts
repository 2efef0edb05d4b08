/**
 * Mini-batch training with Adam (or Adagrad) under a learning-rate schedule, validation after each
 * epoch, early stopping on the best epoch. The embedding table is trained sparsely by default
 * (lazy Adam / sparse Adagrad on the rows a batch touches, ./sparse-optimizer.ts), every other
 * parameter by tfjs's optimiser of the same kind.
 */
import * as tf from "@tensorflow/tfjs";
import type { EncodedBatch } from "../../shared/encoder/encode.ts";
import type { FeatureState } from "../../shared/encoder/state.ts";
import type { TaskMetrics } from "../../shared/manifest.ts";
import type { EpochLog, TrainingState } from "../artifact/checkpoint.ts";
import type { NamedArray } from "../artifact/float-pack.ts";
import { mulberry32, shuffled } from "../core/rng.ts";
import { evaluateTask } from "../metrics/task-metrics.ts";
import { headOutput, initNetwork, type NetworkConfig, networkLogits } from "../models/network.ts";
import type { Params } from "../models/types.ts";
import type { LabelledBatch } from "./batch.ts";
import { batchTensors } from "./batch-gradients.ts";
import { type DivergenceContext, DivergenceError, likelyCause, stepDivergence } from "./divergence.ts";
import { validationScore } from "./early-stopping.ts";
import { dropIds, epochDraws, type IdDropout } from "./id-dropout.ts";
import { createNetworkOptimizer, type OptimizerOptions } from "./network-optimizer.ts";
import { checkWorkers } from "./parallel-optimizer.ts";
import { learningRateSchedule, type ScheduleKind } from "./schedule.ts";
import { MAX_BATCH, MIN_EPOCHS } from "./step-budget.ts";
import { taskWeighting } from "./task-weighting.ts";

export type { EpochLog, TrainingState } from "../artifact/checkpoint.ts";
export type { BatchGradients, EmbeddingUpdates, GradientSource, LabelledBatch, StepLoss } from "./batch.ts";
export { DivergenceError } from "./divergence.ts";
export { createNetworkOptimizer, type NetworkOptimizer, type OptimizerOptions } from "./network-optimizer.ts";

/** The training loop's options, over the optimiser's (./network-optimizer.ts). */
export interface TrainOptions extends OptimizerOptions {
  epochs: number;
  batchSize: number;
  /** Default "cosine" (./schedule.ts). */
  schedule?: ScheduleKind;
  seed: number;
  /**
   * Epochs without improvement of the validation score before stopping. The learning-rate
   * schedule spans all `epochs` whenever the run stops, so stopping early also skips its decay.
   */
  patience: number;
  /** The validation score to maximise (./early-stopping.ts); default "auto" (mean AUC, deviance on small validation parts). */
  earlyStop?: string;
  /** Called once on the freshly initialised parameters (warm start from an earlier model). */
  initialize?: (params: Params) => void;
  /**
   * Called after every optimiser step, after each epoch's sync and once before the first step
   * (pruning re-applies its mask there).
   */
  afterStep?: (params: Params) => void;
  /**
   * Score the starting parameters as "epoch 0": when no epoch beats them they are what is kept
   * (bestEpoch 0). For fine-tuning, where the start is already a trained model.
   */
  keepStart?: boolean;
  /** Save the training state after every epoch, and/or continue from a saved one. */
  checkpoint?: {
    save?: (state: TrainingState) => void;
    resume?: TrainingState;
  };
  onEpoch?: (log: EpochLog) => void;
  /** After every step: the epoch, batches done and planned this epoch, the running mean loss. */
  onBatch?: (progress: { epoch: number; done: number; total: number; loss: number }) => void;
  /**
   * The encoder's features the data went through: a run that diverges (a DivergenceError, at the
   * first step whose loss is not finite) then names the feature behind a dense column, not its index.
   */
  inputs?: readonly FeatureState[];
  /** Id-like features read as unseen in a share of each epoch's rows (./id-dropout.ts). */
  idDropout?: IdDropout;
}

export const DEFAULT_TRAIN_OPTIONS: Omit<TrainOptions, "taskWeights"> = {
  // What the step budget gives files from ~52k training rows up; `train` and `compress
  // --distill-from` size smaller files themselves (./step-budget.ts).
  epochs: MIN_EPOCHS,
  batchSize: MAX_BATCH,
  learningRate: 0.002,
  seed: 42,
  // Not 2: a rare task's validation AUC moves by ±0.01 between epochs (a few hundred positives),
  // and two unlucky epochs stopped runs before the schedule's decay. On a simulator with 0.8%
  // purchases, patience 2 ended MMoE at epoch 2 in one seed of three (test purchase AUC 0.6777
  // against 0.6962 when run on). In 14 simulator runs, 4 kept the epoch that running all 8
  // picked every time, 3 missed it twice; on the census-like and threshold sets (12 runs) 4 and
  // 2 gave the same models.
  patience: 4,
};

export interface TrainResult {
  params: Params;
  history: EpochLog[];
  bestEpoch: number;
  validation: Record<string, TaskMetrics>;
}

export function trainNetwork(
  config: NetworkConfig,
  train: LabelledBatch,
  valid: LabelledBatch,
  options: TrainOptions,
): TrainResult {
  const steps = trainSteps(config, train, valid, options);
  for (;;) {
    const next = steps.next();
    if (next.done) return next.value;
  }
}

/**
 * The same run, handing the event loop a turn after every optimiser step on the webgpu backend.
 * Dawn recycles the descriptor sets of finished GPU work only in such a turn: in a loop that never
 * yields, its descriptor pools grow (~5 MB a step for a small MMoE) until lavapipe crashes in
 * allocating the next one, after ~70 steps; yielding keeps memory flat. On the CPU backends the
 * run stays one synchronous loop.
 */
export async function trainNetworkAsync(
  config: NetworkConfig,
  train: LabelledBatch,
  valid: LabelledBatch,
  options: TrainOptions,
): Promise<TrainResult> {
  if (tf.getBackend() !== "webgpu") return trainNetwork(config, train, valid, options);
  const steps = trainSteps(config, train, valid, options);
  for (;;) {
    const next = steps.next();
    if (next.done) return next.value;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

/** The run as a generator that yields after every optimiser step (the drivers above). */
function* trainSteps(
  config: NetworkConfig,
  train: LabelledBatch,
  valid: LabelledBatch,
  options: TrainOptions,
): Generator<void, TrainResult> {
  const score = validationScore(options.earlyStop ?? "auto", config.heads, valid.rows);
  checkWorkers(options.workers ?? 1, options);
  const params = initNetwork(config, options.seed);
  try {
    return yield* trainFrom(params, score, config, train, valid, options);
  } catch (error) {
    // The parameters are named variables: left registered, the next run in this process could
    // not create its own (an interrupted run that a caller resumes in-process, for one).
    tf.dispose(Object.values(params));
    throw error;
  }
}

function* trainFrom(
  params: Params,
  score: (validation: Record<string, TaskMetrics>) => number,
  config: NetworkConfig,
  train: LabelledBatch,
  valid: LabelledBatch,
  options: TrainOptions,
): Generator<void, TrainResult> {
  const resume = options.checkpoint?.resume;
  if (resume) restore(params, prefixed(resume.arrays, "param/"));
  else options.initialize?.(params);
  const ranking = options.rankingLoss ?? 0;
  if (ranking > 0 && !train.groups)
    throw new Error("--ranking-loss: the dataset spec has no group column to rank within");
  const weighting = taskWeighting(options.taskWeighting ?? "static", config.heads, options.taskWeights);
  const optimizer = createNetworkOptimizer(params, config, { ...options, weighting, rankingLoss: ranking });
  // Disposed however the run ends: a diverged run's worker threads and optimiser slots would
  // otherwise outlive it in a process that goes on (the nightly pipeline, a test run).
  try {
    const stepsPerEpoch = Math.ceil(train.rows / options.batchSize);
    const learningRate = learningRateSchedule({
      kind: options.schedule ?? "cosine",
      peak: options.learningRate,
      totalSteps: stepsPerEpoch * options.epochs,
    });
    let step = 0;
    const rng = mulberry32(options.seed);
    const epochBatches = () =>
      ranking > 0 && train.groups
        ? groupBatches(train.groups, options.batchSize, rng)
        : rowBatches(train.rows, options.batchSize, rng);
    const divergence: DivergenceContext = {
      data: train,
      heads: config.heads,
      learningRate: options.learningRate,
      optimizer: options.optimizer,
      inputs: options.inputs,
    };
    const history: EpochLog[] = [];
    let best: { epoch: number; score: number; values: Map<string, Float32Array> } | null = null;
    options.afterStep?.(params);
    let startValidation: Record<string, TaskMetrics> | undefined;
    if (options.keepStart && !resume) {
      startValidation = evaluateHeads(config, valid, predictNetwork(params, config, valid));
      best = { epoch: 0, score: score(startValidation), values: snapshot(params) };
    }
    if (resume) {
      for (let e = 0; e < resume.epoch; e++) step += epochBatches().length;
      optimizer.importState(resume);
      weighting.variables.forEach((v, i) => {
        v.assign(tf.scalar(resume.scalars.weighting?.[i] ?? 0));
      });
      for (const log of resume.history) weighting.endEpoch(log.taskLosses);
      history.push(...resume.history);
      best = { ...resume.best, values: prefixed(resume.arrays, "best/") };
    }

    for (let epoch = (resume?.epoch ?? 0) + 1; epoch <= options.epochs; epoch++) {
      const started = performance.now();
      const batchList = epochBatches();
      let lossSum = 0;
      let done = 0;
      const taskSums = new Float64Array(config.heads.length);
      const dropout = options.idDropout;
      const draws = dropout ? epochDraws(dropout, epoch) : undefined;
      for (const batch of batchList) {
        optimizer.setLearningRate(learningRate(step++));
        const dropped = dropout && draws ? dropIds(config, train, batch, dropout, draws) : undefined;
        const loss = dropped ? optimizer.step(dropped.batch, dropped.idx) : optimizer.step(train, batch);
        // The losses are numbers already: one test a step. NaN never comes back, so stop here.
        if (!Number.isFinite(loss.total))
          throw stepDivergence({ epoch, step: done + 1, steps: batchList.length }, loss, divergence);
        options.afterStep?.(params);
        lossSum += loss.total;
        done++;
        options.onBatch?.({ epoch, done, total: batchList.length, loss: lossSum / done });
        loss.tasks.forEach((x, i) => {
          taskSums[i] = taskSums[i]! + x;
        });
        yield;
      }
      optimizer.sync();
      options.afterStep?.(params);
      const batches = Math.max(1, batchList.length);
      const taskLosses = Object.fromEntries(config.heads.map((h, i) => [h.name, taskSums[i]! / batches]));
      const taskWeights = weighting.current();
      weighting.endEpoch(taskLosses);
      const validation = evaluateHeads(config, valid, predictNetwork(params, config, valid));
      const log: EpochLog = {
        epoch,
        trainLoss: lossSum / batches,
        taskLosses,
        taskWeights,
        validation,
        score: score(validation),
        seconds: (performance.now() - started) / 1000,
      };
      history.push(log);
      options.onEpoch?.(log);
      if (!best || log.score > best.score) {
        const values = snapshot(params);
        // An epoch's last update can leave non-finite weights behind a finite loss, with no
        // later step to see them; the weights to keep are read here anyway.
        const broken = [...values].find(([, v]) => !v.every(Number.isFinite));
        if (broken)
          throw new DivergenceError(
            `at epoch ${epoch}, step ${batchList.length} of ${batchList.length}`,
            `the update left parameter "${broken[0]}" with non-finite values`,
            likelyCause(divergence),
          );
        best = { epoch, score: log.score, values };
      }
      const stop = epoch - best.epoch >= options.patience;
      if (options.checkpoint?.save && !stop && epoch < options.epochs) {
        const opt = optimizer.exportState();
        const arrays: Record<string, NamedArray> = { ...opt.arrays };
        // When this epoch is the best, its snapshot is the current parameters already.
        const current = best.epoch === epoch ? best.values : snapshot(params);
        for (const [name, values] of current)
          arrays[`param/${name}`] = { shape: params[name]!.shape, values };
        for (const [name, values] of best.values)
          arrays[`best/${name}`] = { shape: params[name]!.shape, values };
        options.checkpoint.save({
          epoch,
          history: [...history],
          best: { epoch: best.epoch, score: best.score },
          arrays,
          scalars: { ...opt.scalars, weighting: weighting.variables.map((v) => v.dataSync()[0]!) },
        });
      }
      if (stop) break;
    }
    restore(params, best!.values);
    const validation = best!.epoch === 0 ? startValidation! : history[best!.epoch - 1]!.validation;
    return { params, history, bestEpoch: best!.epoch, validation };
  } finally {
    optimizer.dispose();
    weighting.dispose();
  }
}

/** The arrays under a key prefix, by the rest of their key. */
function prefixed(arrays: Record<string, NamedArray>, prefix: string): Map<string, Float32Array> {
  return new Map(
    Object.entries(arrays)
      .filter(([key]) => key.startsWith(prefix))
      .map(([key, a]) => [key.slice(prefix.length), a.values]),
  );
}

/** Shuffled rows cut into batches. */
function rowBatches(rows: number, batchSize: number, random: () => number): Int32Array[] {
  const order = shuffled(rows, random);
  const batches: Int32Array[] = [];
  for (let start = 0; start < rows; start += batchSize)
    batches.push(order.subarray(start, start + batchSize));
  return batches;
}

/** Shuffled groups, each kept whole in one batch; a batch closes once it reaches batchSize rows. */
function groupBatches(groups: Uint32Array, batchSize: number, random: () => number): Int32Array[] {
  const members = new Map<number, number[]>();
  groups.forEach((g, row) => {
    const list = members.get(g);
    if (list) list.push(row);
    else members.set(g, [row]);
  });
  const lists = [...members.values()];
  const order = shuffled(lists.length, random);
  const batches: Int32Array[] = [];
  let current: number[] = [];
  for (const k of order) {
    current.push(...lists[k]!);
    if (current.length >= batchSize) {
      batches.push(Int32Array.from(current));
      current = [];
    }
  }
  if (current.length > 0) batches.push(Int32Array.from(current));
  return batches;
}

/** Served outputs per head (probabilities / label units), computed in chunks. */
export function predictNetwork(
  params: Params,
  config: NetworkConfig,
  batch: EncodedBatch,
): Record<string, Float32Array> {
  const out: Record<string, Float32Array> = Object.fromEntries(
    config.heads.map((h) => [h.name, new Float32Array(batch.rows)]),
  );
  const chunk = 8192;
  for (let start = 0; start < batch.rows; start += chunk) {
    const end = Math.min(batch.rows, start + chunk);
    const idx = Int32Array.from({ length: end - start }, (_, i) => start + i);
    const values = tf.tidy(() => {
      const logits = networkLogits(params, config, batchTensors(config, batch, idx));
      return config.heads.map((h) => headOutput(h, logits[h.name]!).dataSync() as Float32Array);
    });
    config.heads.forEach((h, i) => {
      out[h.name]!.set(values[i]!, start);
    });
  }
  return out;
}

export function evaluateHeads(
  config: NetworkConfig,
  batch: LabelledBatch,
  predictions: Record<string, Float32Array>,
): Record<string, TaskMetrics> {
  return Object.fromEntries(
    config.heads.map((head) => [
      head.name,
      evaluateTask(head, batch.labels[head.name]!, predictions[head.name]!).metrics,
    ]),
  );
}

function snapshot(params: Params): Map<string, Float32Array> {
  return new Map(
    Object.entries(params).map(([k, v]) => [k, Float32Array.from(v.dataSync() as Float32Array)]),
  );
}

function restore(params: Params, values: Map<string, Float32Array>): void {
  tf.tidy(() => {
    for (const [k, v] of Object.entries(params)) v.assign(tf.tensor(values.get(k)!, v.shape));
  });
}
