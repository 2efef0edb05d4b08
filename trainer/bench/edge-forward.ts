/**
 * A plain-JS forward pass of an MMoE (trainer/models/mmoe.ts) from its float32 weights: the
 * "no runtime at all" column of npm run bench:edge. Row-major loops over Float32Arrays, one
 * candidate at a time, nothing clever beyond skipping the user/context part of the first layers
 * when `factorised` (the same split the factorised graph makes). Cross layers (--cross,
 * cross-network.ts) run before the experts (stacked: no factorised form) or beside them
 * (parallel: each head adds its cross tower's logit).
 */
import type { EncodedBatch } from "../../shared/encoder/encode.ts";
import type { FactorisedSide } from "../../shared/manifest.ts";
import type { TrainedModel } from "../artifact/trained-model.ts";
import { countCrossLayers, isParallelCross } from "../models/cross-network.ts";

interface Layer {
  kernel: Float32Array;
  bias: Float32Array;
  inDim: number;
  outDim: number;
}

export interface JsForward {
  /** Head values (sigmoid of each tower's logit) per row, by head name. */
  run(batch: EncodedBatch, factorised?: { user: FactorisedSide }): Record<string, Float32Array>;
}

export function jsMmoe(model: TrainedModel): JsForward {
  const { config, weights } = model;
  if (config.arch !== "mmoe") throw new Error(`jsMmoe: expected an mmoe model, got "${config.arch}"`);
  if ((config as { pools?: unknown[] }).pools?.length)
    throw new Error("jsMmoe: embedding pools are not supported");
  /** `${name}/kernel` with the bias `bias` names (none: zeros). */
  const layer = (name: string, bias: string | null = `${name}/bias`): Layer => {
    const k = weights[`${name}/kernel`];
    const b = bias === null ? new Float32Array(k?.shape[1] ?? 0) : weights[bias]?.values;
    if (!k || !b) throw new Error(`jsMmoe: no weights for layer "${name}"`);
    return { kernel: k.values, bias: b, inDim: k.shape[0]!, outDim: k.shape[1]! };
  };
  const stack = (prefix: string): Layer[] => {
    const out: Layer[] = [];
    while (weights[`${prefix}/${out.length}/kernel`]) out.push(layer(`${prefix}/${out.length}`));
    return out;
  };
  const cross = Array.from({ length: countCrossLayers(weights) }, (_, l) => ({
    down: layer(`cross_${l}/down`, null),
    up: layer(`cross_${l}/up`, `cross_${l}/bias`),
  }));
  const experts: Layer[][] = [];
  while (weights[`expert_${experts.length}/0/kernel`]) experts.push(stack(`expert_${experts.length}`));
  const parallel = isParallelCross(weights);
  const heads = config.heads.map((h) => ({
    name: h.name,
    gate: layer(`gate_${h.name}`),
    tower: stack(`tower_${h.name}`),
    logit: layer(`tower_${h.name}/logit`),
    cross: parallel
      ? { hidden: stack(`cross_tower_${h.name}`), logit: layer(`cross_tower_${h.name}/logit`) }
      : undefined,
  }));
  const table = weights.embedding?.values;
  const E = config.embeddingDim;
  const width = config.denseSize + config.idSlots * E;
  const firstLayers = [...experts.map((e) => e[0]!), ...heads.map((h) => h.gate)];

  /** Columns of x written by the user side: its dense columns and its slots' E columns each. */
  const userColumns = (user: FactorisedSide): Uint8Array => {
    const mask = new Uint8Array(width);
    for (const c of user.dense) mask[c] = 1;
    for (const s of user.ids) mask.fill(1, config.denseSize + s * E, config.denseSize + (s + 1) * E);
    return mask;
  };

  return {
    run(batch, factorised) {
      if (factorised && cross.length > 0 && !parallel)
        throw new Error("jsMmoe: a model with stacked cross layers has no factorised form");
      const n = batch.rows;
      const out: Record<string, Float32Array> = Object.fromEntries(
        heads.map((h) => [h.name, new Float32Array(n)]),
      );
      const x = new Float32Array(width);
      const xL = new Float32Array(width);
      const mask = factorised ? userColumns(factorised.user) : undefined;
      // Factorised: the user part of each first layer, x_user · W_user + b, once for the request.
      const userPart = firstLayers.map((l) => new Float32Array(l.outDim));
      for (let r = 0; r < n; r++) {
        fillInput(x, batch, r, config.denseSize, config.idSlots, E, table);
        if (parallel) {
          xL.set(x);
          crossLayers(cross, xL);
        } else if (cross.length > 0) crossLayers(cross, x);
        if (mask && r === 0)
          firstLayers.forEach((l, i) => {
            affine(l, x, userPart[i]!, mask, 1, l.bias);
          });
        const first = firstLayers.map((l, i) =>
          mask ? affine(l, x, new Float32Array(l.outDim), mask, 0, userPart[i]!) : affine(l, x),
        );
        const expertOut = experts.map((layers, e) => {
          let h = relu(first[e]!);
          for (let i = 1; i < layers.length; i++) h = relu(affine(layers[i]!, h));
          return h;
        });
        heads.forEach((head, t) => {
          const gate = softmax(first[experts.length + t]!);
          const d = expertOut[0]!.length;
          let h: Float32Array = new Float32Array(d);
          for (let e = 0; e < expertOut.length; e++) {
            const g = gate[e]!;
            const v = expertOut[e]!;
            for (let j = 0; j < d; j++) h[j]! += g * v[j]!;
          }
          for (const l of head.tower) h = relu(affine(l, h));
          let z = affine(head.logit, h)[0]!;
          if (head.cross) {
            let c: Float32Array = xL;
            for (const l of head.cross.hidden) c = relu(affine(l, c));
            z += affine(head.cross.logit, c)[0]!;
          }
          out[head.name]![r] = 1 / (1 + Math.exp(-z));
        });
      }
      return out;
    },
  };
}

/** x <- x_L of x_{l+1} = x0 ⊙ (x_l · down · up + bias) + x_l, in place (x holds x0 on entry). */
function crossLayers(layers: readonly { down: Layer; up: Layer }[], x: Float32Array): void {
  const x0 = Float32Array.from(x);
  for (const l of layers) {
    const map = affine(l.up, affine(l.down, x));
    for (let i = 0; i < x.length; i++) x[i]! += x0[i]! * map[i]!;
  }
}

function fillInput(
  x: Float32Array,
  batch: EncodedBatch,
  r: number,
  denseSize: number,
  idSlots: number,
  E: number,
  table: Float32Array | undefined,
): void {
  x.set(batch.dense.subarray(r * denseSize, (r + 1) * denseSize), 0);
  for (let s = 0; s < idSlots; s++) {
    const id = batch.ids[r * idSlots + s]!;
    x.set(table!.subarray(id * E, (id + 1) * E), denseSize + s * E);
  }
}

/**
 * y = start + x · W, over the input columns where mask[i] === keep (all columns without a mask);
 * `start` defaults to the bias.
 */
function affine(
  l: Layer,
  x: Float32Array,
  y: Float32Array = new Float32Array(l.outDim),
  mask?: Uint8Array,
  keep = 1,
  start: Float32Array = l.bias,
): Float32Array {
  y.set(start);
  for (let i = 0; i < l.inDim; i++) {
    if (mask && mask[i] !== keep) continue;
    const xi = x[i]!;
    if (xi === 0) continue;
    const row = i * l.outDim;
    for (let j = 0; j < l.outDim; j++) y[j]! += xi * l.kernel[row + j]!;
  }
  return y;
}

function relu(v: Float32Array): Float32Array {
  for (let i = 0; i < v.length; i++) if (v[i]! < 0) v[i] = 0;
  return v;
}

function softmax(v: Float32Array): Float32Array {
  let max = Number.NEGATIVE_INFINITY;
  for (const z of v) max = Math.max(max, z);
  let sum = 0;
  const out = new Float32Array(v.length);
  for (let i = 0; i < v.length; i++) {
    out[i] = Math.exp(v[i]! - max);
    sum += out[i]!;
  }
  for (let i = 0; i < v.length; i++) out[i]! /= sum;
  return out;
}
