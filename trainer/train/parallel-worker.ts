/**
 * A data-parallel training worker (./parallel-optimizer.ts): on each shard it receives, the
 * shard's loss and gradients with the posted parameter values, computed by the same
 * shardGradients as the main thread. It keeps no training state: parameters and task weights
 * arrive with every shard.
 */
import { workerData } from "node:worker_threads";
import * as tf from "@tensorflow/tfjs";
import type { Params } from "../models/types.ts";
import { selectBackend } from "./backend.ts";
import { batchObjective, shardGradients } from "./batch-gradients.ts";
import type { ShardJob, WorkerInit, WorkerReply } from "./parallel-optimizer.ts";
import { type TaskWeighting, taskWeighting } from "./task-weighting.ts";

const init = workerData as WorkerInit;
const { config, port, flags, slot } = init;

function reply(message: WorkerReply, transfer: ArrayBuffer[] = []): void {
  port.postMessage(message, transfer);
  // Raised only after the message is queued on the port: the main thread reads it right away.
  Atomics.store(flags, slot, 1);
  Atomics.notify(flags, slot);
}

const errorText = (error: unknown) => (error instanceof Error ? error.message : String(error));

// Uncertainty weighting differentiates its own variables: one set, values assigned per shard.
const learned =
  init.weightingKind === "uncertainty" ? taskWeighting("uncertainty", config.heads, init.taskWeights) : null;
const offsets = [0];
for (const shape of init.shapes)
  offsets.push(offsets[offsets.length - 1]! + shape.reduce((a, b) => a * b, 1));

function weightingFor(weights: Float32Array): TaskWeighting {
  if (learned) {
    tf.tidy(() => {
      learned.variables.forEach((v, i) => {
        v.assign(tf.scalar(weights[i]!));
      });
    });
    return learned;
  }
  return taskWeighting(
    "static",
    config.heads,
    Object.fromEntries(config.heads.map((h, i) => [h.name, weights[i]!])),
  );
}

function compute(job: ShardJob): WorkerReply {
  const weighting = weightingFor(job.weights);
  const objective = batchObjective(config, weighting, 0, init.l2);
  // Plain tensors in the variables' places (differentiated as they are, never assigned).
  const params: Params = Object.fromEntries(
    init.names.map((name, i) => [
      name,
      tf.tensor(job.params.subarray(offsets[i]!, offsets[i + 1]!), init.shapes[i]!) as tf.Variable,
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
  await selectBackend(init.backend);
  port.on("message", (job: ShardJob) => {
    let answer: WorkerReply;
    try {
      answer = compute(job);
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
