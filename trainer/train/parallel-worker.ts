/**
 * A data-parallel training worker (./parallel-optimizer.ts): it loads tfjs and its backend when
 * started (possibly before the run's data is read), learns the run from its first message (the
 * network, parameter names and shapes, weighting, penalty), then answers each shard with the
 * shard's loss and gradients at the posted parameter values, computed by the same shardGradients
 * as the main thread. It keeps no training state: parameters and task weights arrive with every
 * shard.
 */
import { workerData } from "node:worker_threads";
import * as tf from "@tensorflow/tfjs";
import type { Params } from "../models/types.ts";
import { selectBackend } from "./backend.ts";
import { batchObjective, shardGradients } from "./batch-gradients.ts";
import type { ShardJob, WorkerBoot, WorkerMessage, WorkerReply, WorkerSetup } from "./parallel-optimizer.ts";
import { type TaskWeighting, taskWeighting } from "./task-weighting.ts";

const { backend, port, flags } = workerData as WorkerBoot;

function reply(message: WorkerReply, transfer: ArrayBuffer[] = []): void {
  port.postMessage(message, transfer);
  // Raised only after the message is queued on the port: the main thread reads it right away.
  Atomics.store(flags, 0, 1);
  Atomics.notify(flags, 0);
}

const errorText = (error: unknown) => (error instanceof Error ? error.message : String(error));

/** The run this worker serves: set by the first message (WorkerSetup). */
interface Run {
  setup: WorkerSetup;
  /** Uncertainty weighting differentiates its own variables: one set, values assigned per shard. */
  learned: TaskWeighting | null;
  /** Where each dense parameter starts in a posted ShardJob.params. */
  offsets: number[];
}

function prepare(setup: WorkerSetup): Run {
  const { config } = setup;
  const learned =
    setup.weightingKind === "uncertainty"
      ? taskWeighting("uncertainty", config.heads, setup.taskWeights)
      : null;
  const offsets = [0];
  for (const shape of setup.shapes)
    offsets.push(offsets[offsets.length - 1]! + shape.reduce((a, b) => a * b, 1));
  return { setup, learned, offsets };
}

function weightingFor({ setup, learned }: Run, weights: Float32Array): TaskWeighting {
  if (learned) {
    tf.tidy(() => {
      learned.variables.forEach((v, i) => {
        v.assign(tf.scalar(weights[i]!));
      });
    });
    return learned;
  }
  const { heads } = setup.config;
  return taskWeighting("static", heads, Object.fromEntries(heads.map((h, i) => [h.name, weights[i]!])));
}

function compute(run: Run, job: ShardJob): WorkerReply {
  const { config, names, shapes, l2 } = run.setup;
  const weighting = weightingFor(run, job.weights);
  const objective = batchObjective(config, weighting, 0, l2);
  // Plain tensors in the variables' places (differentiated as they are, never assigned).
  const params: Params = Object.fromEntries(
    names.map((name, i) => [
      name,
      tf.tensor(job.params.subarray(run.offsets[i]!, run.offsets[i + 1]!), shapes[i]!) as tf.Variable,
    ]),
  );
  const values = Object.values(params);
  const g = shardGradients(objective, config, params, [...values, ...weighting.variables], job.shard);
  tf.dispose(values);
  const read = (t: tf.Tensor) => Float32Array.from(t.dataSync() as Float32Array);
  const out = {
    loss: g.loss.dataSync()[0]!,
    tasks: read(g.tasks),
    table: g.table ? read(g.table) : null,
    vars: g.vars.map((t) => (t ? read(t) : null)),
  };
  tf.dispose([g.loss, g.tasks, ...(g.table ? [g.table] : []), ...g.vars.filter((t) => t !== null)]);
  return out;
}

try {
  await selectBackend(backend);
  let run: Run | undefined;
  // A setup that fails is told with the next shard's answer: the main thread waits for replies
  // to shards only, and a worker that died here would leave it waiting out the step's limit.
  let setupError: string | undefined;
  port.on("message", (message: WorkerMessage) => {
    if ("setup" in message) {
      try {
        run = prepare(message.setup);
        setupError = undefined;
      } catch (error) {
        run = undefined;
        setupError = `the run's setup failed: ${errorText(error)}`;
      }
      return;
    }
    let answer: WorkerReply;
    try {
      if (!run) throw new Error(setupError ?? "a shard arrived before the run's setup");
      answer = compute(run, message);
    } catch (error) {
      answer = { error: errorText(error) };
    }
    const transfer =
      "vars" in answer
        ? [
            answer.tasks,
            ...(answer.table ? [answer.table] : []),
            ...answer.vars.filter((v) => v !== null),
          ].map((a) => a.buffer as ArrayBuffer)
        : [];
    reply(answer, transfer);
  });
  reply({ ready: true });
} catch (error) {
  reply({ error: `could not start: ${errorText(error)}` });
}
