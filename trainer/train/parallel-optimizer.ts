/**
 * Data-parallel gradients for the sparse path (TrainOptions.workers = n > 1): every mini-batch
 * is cut into n contiguous shards; this thread computes shard 0 while n-1 worker threads
 * (./parallel-worker.ts) compute the others; the gradients are averaged, weighted by shard size,
 * and the caller applies ONE optimiser update, so the step is the one-thread step up to float
 * rounding (the batch losses are means over rows).
 *
 *   main:    lookup rows per shard -> post shard k to worker k -> shardGradients(shard 0)
 *            -> Atomics.wait on worker k's flag -> receiveMessageOnPort -> average
 *   worker:  on a shard: parameters from the posted values -> shardGradients -> post -> flag
 *
 * step() stays synchronous (the epoch loop is), so the main thread never yields to its event
 * loop: it sleeps on a SharedArrayBuffer flag the worker raises after posting its result, then
 * takes the message straight off the port. Workers hold no state between steps: each step posts
 * the current dense parameters (tens of thousands of floats, well under a millisecond to copy)
 * and the embedding rows the shard reads, which keeps them exactly in step with the optimiser.
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath, pathToFileURL } from "node:url";
import { MessageChannel, type MessagePort, receiveMessageOnPort, Worker } from "node:worker_threads";
import * as tf from "@tensorflow/tfjs";
import type { WeightingKind } from "../artifact/trained-model.ts";
import type { NetworkConfig } from "../models/network.ts";
import type { Params } from "../models/types.ts";
import type { BatchGradients, EmbeddingUpdates, GradientSource, StepLoss } from "./batch.ts";
import {
  batchArrays,
  batchObjective,
  type L2Penalty,
  readCounts,
  type Shard,
  shardGradients,
} from "./batch-gradients.ts";
import type { RowLookup, SparseOptimizer } from "./sparse-optimizer.ts";
import type { TaskWeighting } from "./task-weighting.ts";

/** How long a worker may take to start (tsx compile, tfjs and its backend), and one shard. */
const START_TIMEOUT_MS = 180_000;
const STEP_TIMEOUT_MS = 600_000;

/** What a worker is started with (workerData): enough to load tfjs and its backend. */
export interface WorkerBoot {
  backend: string;
  port: MessagePort;
  /** One Int32 on a SharedArrayBuffer: raised to 1 once a reply is on the port. */
  flags: Int32Array;
}

/** What a worker learns of the run before its first shard (the first message on its port). */
export interface WorkerSetup {
  config: NetworkConfig;
  /** The dense parameters, in the order their values are posted and gradients returned. */
  names: string[];
  shapes: number[][];
  weightingKind: WeightingKind;
  taskWeights: Record<string, number>;
  l2: L2Penalty;
}

/** A message to a worker: the run's setup, then shards. */
export type WorkerMessage = { setup: WorkerSetup } | ShardJob;

/** One shard to differentiate. */
export interface ShardJob {
  shard: Shard;
  /** The dense parameters' values, concatenated in `names` order. */
  params: Float32Array;
  /** Uncertainty weighting: its log-variances; otherwise each head's weight (config.heads order). */
  weights: Float32Array;
}

export type WorkerReply =
  | { ready: true }
  | { error: string }
  | { loss: number; tasks: Float32Array; table: Float32Array | null; vars: (Float32Array | null)[] };

export interface ParallelContext {
  workers: number;
  config: NetworkConfig;
  params: Params;
  /** The dense parameters (params without the embedding) then the weighting's variables. */
  vars: tf.Variable[];
  lazy: SparseOptimizer | null;
  weighting: TaskWeighting;
  weightingKind: WeightingKind;
  taskWeights: Record<string, number>;
  /** The whole penalty: the shards' objectives carry the kernels' part only (see tableMerger). */
  l2: L2Penalty;
}

/** Refuses what the data-parallel path cannot train, before any data is read. */
export function checkWorkers(
  workers: number,
  options: { rankingLoss?: number | undefined; embeddingUpdates?: EmbeddingUpdates | undefined },
): void {
  if (!Number.isInteger(workers) || workers < 1)
    throw new Error(`--workers: expected a whole number of threads >= 1, got ${workers}`);
  if (workers === 1) return;
  if ((options.rankingLoss ?? 0) > 0)
    throw new Error(
      `--workers: --ranking-loss needs whole groups in one batch and cannot be split over ${workers} workers; use --workers 1`,
    );
  if (options.embeddingUpdates === "dense")
    throw new Error(
      `--workers: --embedding-updates dense is not supported with ${workers} workers (sparse updates only); use --workers 1`,
    );
}

/** Starts the workers (once per training run) and returns the batch gradient source over them. */
export function parallelGradients(ctx: ParallelContext): { gradients: GradientSource; dispose(): void } {
  const { config, lazy } = ctx;
  const denseEntries = Object.entries(ctx.params).filter(([name]) => name !== "embedding");
  const sizes = denseEntries.map(([, v]) => v.size);
  // The shards (this thread's and the workers') leave the embedding rows' penalty to the merge,
  // which knows every read of the whole batch.
  const shardL2 = { ...ctx.l2, embedding: 0 };
  const objective = batchObjective(config, ctx.weighting, 0, shardL2);
  const setup: WorkerSetup = {
    config,
    names: denseEntries.map(([name]) => name),
    shapes: denseEntries.map(([, v]) => [...v.shape]),
    weightingKind: ctx.weightingKind,
    taskWeights: ctx.taskWeights,
    l2: shardL2,
  };
  const workers = Array.from({ length: ctx.workers - 1 }, (_, k) => {
    const worker = takeSpare(tf.getBackend()) ?? startWorker(tf.getBackend(), k + 1);
    worker.setup(setup);
    return worker;
  });
  let started = false;
  const merge = tableMerger(config, ctx.l2.embedding);

  const currentParams = (): Float32Array => {
    const out = new Float32Array(sizes.reduce((a, b) => a + b, 0));
    let offset = 0;
    denseEntries.forEach(([, v], i) => {
      out.set(v.dataSync() as Float32Array, offset);
      offset += sizes[i]!;
    });
    return out;
  };
  const currentWeights = (): Float32Array => {
    if (ctx.weightingKind === "uncertainty")
      return Float32Array.from(ctx.weighting.variables, (v) => v.dataSync()[0]!);
    const now = ctx.weighting.current();
    return Float32Array.from(config.heads, (h) => now[h.name] ?? 0);
  };

  const gradients: GradientSource = (data, idx) => {
    if (!started) {
      workers.forEach((w) => {
        w.receive(START_TIMEOUT_MS, "start");
      });
      started = true;
    }
    const count = Math.min(ctx.workers, idx.length);
    const shards: { shard: Shard; lookup: RowLookup; reads: Float32Array }[] = [];
    for (let k = 0; k < count; k++) {
      const part = idx.subarray(
        Math.floor((k * idx.length) / count),
        Math.floor(((k + 1) * idx.length) / count),
      );
      const arrays = batchArrays(config, data, part);
      const lookup = lazy ? lazy.lookup(arrays.ids) : NO_ROWS;
      // Counted before the ids move to a worker: the merge's L2 penalty needs every read.
      const reads = readCounts(lookup.local, lookup.rows.length);
      shards.push({
        lookup,
        reads,
        shard: {
          arrays: lazy ? { ...arrays, ids: lookup.local } : arrays,
          n: part.length,
          tableRows: lookup.rows.length,
          tableValues: lookup.values,
        },
      });
    }
    if (count > 1) {
      const params = currentParams();
      const weights = currentWeights();
      for (let k = 1; k < count; k++) workers[k - 1]!.post({ shard: shards[k]!.shard, params, weights });
    }
    const own = shardGradients(objective, config, ctx.params, ctx.vars, shards[0]!.shard);
    const parts: ShardResult[] = [
      {
        loss: own.loss.dataSync()[0]!,
        tasks: Float32Array.from(own.tasks.dataSync() as Float32Array),
        table: own.table ? (own.table.dataSync() as Float32Array).slice() : null,
        vars: own.vars.map((t) => (t ? (t.dataSync() as Float32Array) : null)),
      },
    ];
    tf.dispose([
      own.loss,
      own.tasks,
      ...(own.table ? [own.table] : []),
      ...own.vars.filter((t) => t !== null),
    ]);
    for (let k = 1; k < count; k++) {
      const reply = workers[k - 1]!.receive(STEP_TIMEOUT_MS, "step");
      if (!("loss" in reply)) throw new Error(`--workers: worker ${k} sent no gradients`);
      parts.push(reply);
    }
    const shares = shards.map((s) => s.shard.n / idx.length);
    const vars = ctx.vars.map((_, i) => averageArray(parts, shares, i));
    const { rows, table, loss } = merge(shards, parts, shares);
    const average = averageLoss(parts, shares);
    return { loss: { ...average, total: average.total + loss }, vars, rows, table } satisfies BatchGradients;
  };
  return {
    gradients,
    dispose: () => {
      for (const w of workers) w.stop();
    },
  };
}

interface ShardResult {
  loss: number;
  tasks: Float32Array;
  table: Float32Array | null;
  vars: (Float32Array | null)[];
}

const NO_ROWS: RowLookup = { rows: new Int32Array(0), local: new Int32Array(0), values: new Float32Array(0) };

function averageLoss(parts: readonly ShardResult[], shares: readonly number[]): StepLoss {
  const tasks = new Float32Array(parts[0]!.tasks.length);
  let total = 0;
  parts.forEach((p, k) => {
    total += shares[k]! * p.loss;
    p.tasks.forEach((x, t) => {
      tasks[t] = tasks[t]! + shares[k]! * x;
    });
  });
  return { total, tasks };
}

/**
 * Σ share·gradient of variable i over the shards (a shard without one adds 0); null if none has
 * one. In plain JS: a few tens of thousands of values, cheaper than tfjs ops per variable.
 */
function averageArray(
  parts: readonly ShardResult[],
  shares: readonly number[],
  i: number,
): Float32Array | null {
  let out: Float32Array | null = null;
  parts.forEach((p, k) => {
    const g = p.vars[i];
    if (!g) return;
    out ??= new Float32Array(g.length);
    const share = shares[k]!;
    for (let j = 0; j < g.length; j++) out[j] = out[j]! + share * g[j]!;
  });
  return out;
}

/**
 * The table gradient of the whole batch from the shards' [U_k, E] gradients: one row per
 * distinct row of the batch (union, in order of first appearance), Σ share·gradient. The L2
 * penalty on the embedding rows is added here, not in the shards: each row's λ/2·|w|² divided by
 * how many times the whole batch reads it (as one thread computes it), gradient λ·w / reads.
 */
function tableMerger(config: NetworkConfig, l2: number) {
  const E = config.embeddingDim;
  const slot = new Int32Array(config.idSlots > 0 ? config.vocabSize : 0).fill(-1);
  return (
    shards: readonly { lookup: RowLookup; reads: Float32Array; shard: Shard }[],
    parts: readonly ShardResult[],
    shares: readonly number[],
  ): { rows: Int32Array; table: Float32Array; loss: number } => {
    const capacity = shards.reduce((n, s) => n + s.lookup.rows.length, 0);
    const rows = new Int32Array(capacity);
    const table = new Float32Array(capacity * E);
    const reads = new Float64Array(capacity);
    const source = new Int32Array(capacity * 2); // shard and its local row holding the row's value
    let count = 0;
    shards.forEach(({ lookup, reads: shardReads }, k) => {
      const grad = parts[k]!.table;
      if (!grad) return;
      const share = shares[k]!;
      lookup.rows.forEach((row, r) => {
        let m = slot[row]!;
        if (m < 0) {
          m = count++;
          slot[row] = m;
          rows[m] = row;
          source[2 * m] = k;
          source[2 * m + 1] = r;
        }
        reads[m] = reads[m]! + shardReads[r]!;
        for (let e = 0; e < E; e++) table[m * E + e] = table[m * E + e]! + share * grad[r * E + e]!;
      });
    });
    let loss = 0;
    for (let m = 0; m < count; m++) {
      slot[rows[m]!] = -1;
      if (l2 > 0 && reads[m]! > 0) {
        const values = shards[source[2 * m]!]!.lookup.values;
        const at = source[2 * m + 1]! * E;
        const lambda = l2 / reads[m]!;
        for (let e = 0; e < E; e++) {
          const w = values[at + e]!;
          table[m * E + e] = table[m * E + e]! + lambda * w;
          loss += (lambda * w * w) / 2;
        }
      }
    }
    return { rows: rows.slice(0, count), table: table.slice(0, count * E), loss };
  };
}

interface WorkerHandle {
  readonly backend: string;
  /** The run's setup, before the first shard (the worker reads its messages in order). */
  setup(setup: WorkerSetup): void;
  post(job: ShardJob): void;
  /** Waits (blocking this thread) for the worker's next reply. */
  receive(timeoutMs: number, what: string): Exclude<WorkerReply, { error: string }>;
  stop(): void;
}

/** Workers started ahead of a run (prestartWorkers), loading tfjs while the data is read. */
const spares: WorkerHandle[] = [];

/**
 * Starts `count` workers on `backend` now, for the next parallelGradients to take: a worker
 * spends ~0.7-1 s loading tsx, tfjs and its backend, which then overlaps the reading and
 * encoding of the data instead of delaying the first step. Where they cannot start, nothing.
 */
export function prestartWorkers(backend: string, count: number): void {
  if (!canStartWorkers()) return;
  for (let k = 0; k < count; k++) spares.push(startWorker(backend, spares.length + 1));
}

/** Stops the workers started ahead that no run took (a run that trains on one thread). */
export function stopSpareWorkers(): void {
  for (const worker of spares.splice(0)) worker.stop();
}

/** How many workers started ahead wait for a run. */
export function spareWorkers(): number {
  return spares.length;
}

function takeSpare(backend: string): WorkerHandle | undefined {
  const at = spares.findIndex((w) => w.backend === backend);
  return at < 0 ? undefined : spares.splice(at, 1)[0];
}

/**
 * Whether worker threads can start in this process: the worker's source file sits beside this
 * one and tsx resolves. A bundle (scripts/bundle-gpu.ts) has neither, so it trains on one thread
 * unless --workers asks for more (which then fails, saying why).
 */
export function canStartWorkers(): boolean {
  try {
    createRequire(import.meta.url).resolve("tsx");
    return existsSync(fileURLToPath(new URL("./parallel-worker.ts", import.meta.url)));
  } catch {
    return false;
  }
}

/**
 * A worker running ./parallel-worker.ts. It is a .ts file: the worker loads it through tsx's
 * loader (resolved from this file, so it works under `tsx` and under vitest alike).
 */
function startWorker(backend: string, number: number): WorkerHandle {
  const { port1, port2 } = new MessageChannel();
  const flags = new Int32Array(new SharedArrayBuffer(4));
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
  const worker = new Worker(new URL("./parallel-worker.ts", import.meta.url), {
    execArgv: ["--import", tsx],
    workerData: { backend, flags, port: port2 } satisfies WorkerBoot,
    transferList: [port2],
  });
  // Replies are taken synchronously (receiveMessageOnPort); neither keeps the process alive.
  worker.unref();
  port1.unref();
  const name = `worker ${number}`;
  return {
    backend,
    setup(setup) {
      port1.postMessage({ setup } satisfies WorkerMessage);
    },
    post(job) {
      Atomics.store(flags, 0, 0);
      const { shard } = job;
      // The shard's own copies move; the table rows stay (the merge's L2 penalty reads them).
      const transfer = [
        shard.arrays.dense.buffer,
        shard.arrays.ids.buffer,
        ...Object.values(shard.arrays.labels).map((l) => l.buffer),
        ...Object.values(shard.arrays.labelWeights).map((w) => w.buffer),
      ] as ArrayBuffer[];
      port1.postMessage(job satisfies WorkerMessage, transfer);
    },
    receive(timeoutMs, what) {
      if (Atomics.wait(flags, 0, 0, timeoutMs) === "timed-out")
        throw new Error(`--workers: ${name} did not answer (${what}) within ${timeoutMs / 1000} s`);
      Atomics.store(flags, 0, 0);
      const reply = receiveMessageOnPort(port1)?.message as WorkerReply | undefined;
      if (!reply) throw new Error(`--workers: ${name} raised its flag without a reply (${what})`);
      if ("error" in reply) throw new Error(`--workers: ${name} failed (${what}): ${reply.error}`);
      return reply;
    },
    stop() {
      port1.close();
      void worker.terminate();
    },
  };
}
