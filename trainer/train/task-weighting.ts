/**
 * How the per-task losses combine into the one that is minimised, L = Σ wᵢ·Lᵢ (+ terms).
 *
 * - static: the configured weights (spec `weight`, --task-weights), fixed.
 * - uncertainty (Kendall, Gal & Cipolla 2018): a learned log-variance sᵢ per task,
 *   L = Σ cᵢ·e^(-sᵢ)·wᵢ·Lᵢ + sᵢ/2, with cᵢ = 1 for binary heads and 1/2 for regression heads; a
 *   noisy task (large irreducible loss) raises its own sᵢ and so its weight falls. The sᵢ are
 *   trained with the network but are not part of it (not exported).
 * - dwa (Dynamic Weight Average, Liu et al. 2019): after each epoch, a task whose training loss
 *   fell slowly gets more weight: wᵢ(t) = K·softmax(rᵢ/T)·staticᵢ with rᵢ = Lᵢ(t-1)/Lᵢ(t-2), T = 2.
 *
 * `current()` gives the effective weights (what multiplies each Lᵢ), logged per epoch so the
 * report can show how they moved.
 */
import * as tf from "@tensorflow/tfjs";
import type { WeightingKind } from "../artifact/trained-model.ts";
import type { HeadSpec } from "../models/types.ts";
import { weightedSum } from "./loss.ts";

export const WEIGHTINGS: readonly WeightingKind[] = ["static", "uncertainty", "dwa"];

export interface TaskWeighting {
  /** The total loss from per-head loss scalars (called inside the gradient function). */
  combine(losses: Readonly<Record<string, tf.Scalar>>): tf.Scalar;
  /** Trainable variables the weighting adds (uncertainty's log-variances). */
  variables: tf.Variable[];
  /** Called after each epoch with the epoch's mean training loss per task. */
  endEpoch(taskLosses: Readonly<Record<string, number>>): void;
  /** The effective weight per task now. */
  current(): Record<string, number>;
  dispose(): void;
}

const DWA_TEMPERATURE = 2;
let uncertaintyInstances = 0;

export function taskWeighting(
  kind: WeightingKind,
  heads: readonly HeadSpec[],
  weights: Readonly<Record<string, number>>,
): TaskWeighting {
  const staticOf = (name: string) => weights[name] ?? 1;
  const active = heads.filter((h) => staticOf(h.name) !== 0);
  if (kind === "uncertainty") return uncertainty(active, staticOf);
  if (kind === "dwa") return dwa(active, staticOf);
  return fixed(active, (name) => staticOf(name));
}

function fixed(heads: readonly HeadSpec[], weightOf: (name: string) => number): TaskWeighting {
  return {
    combine: (losses) => weightedSum(heads, losses, weightOf),
    variables: [],
    endEpoch: () => {},
    current: () => Object.fromEntries(heads.map((h) => [h.name, weightOf(h.name)])),
    dispose: () => {},
  };
}

function uncertainty(heads: readonly HeadSpec[], staticOf: (name: string) => number): TaskWeighting {
  const instance = uncertaintyInstances++;
  const logVars = new Map(
    heads.map((h) => [h.name, tf.variable(tf.scalar(0), true, `uncertainty_${instance}/${h.name}`)]),
  );
  const scale = (h: HeadSpec) => (h.type === "regression" ? 0.5 : 1) * staticOf(h.name);
  return {
    combine(losses) {
      let total: tf.Scalar = tf.scalar(0);
      for (const h of heads) {
        const s = logVars.get(h.name)!;
        const term = tf.add(tf.mul(tf.mul(scale(h), tf.exp(tf.neg(s))), losses[h.name]!), tf.mul(0.5, s));
        total = tf.add(total, term);
      }
      return total;
    },
    variables: [...logVars.values()],
    endEpoch: () => {},
    current: () =>
      Object.fromEntries(
        heads.map((h) => [h.name, scale(h) * Math.exp(-(logVars.get(h.name)!.dataSync()[0] ?? 0))]),
      ),
    dispose: () => {
      for (const v of logVars.values()) v.dispose();
    },
  };
}

function dwa(heads: readonly HeadSpec[], staticOf: (name: string) => number): TaskWeighting {
  const history: Record<string, number>[] = [];
  let factors: Record<string, number> = Object.fromEntries(heads.map((h) => [h.name, 1]));
  const weightOf = (name: string) => staticOf(name) * (factors[name] ?? 1);
  return {
    ...fixed(heads, weightOf),
    endEpoch(taskLosses) {
      history.push({ ...taskLosses });
      if (history.length < 2) return;
      const [before, last] = history.slice(-2) as [Record<string, number>, Record<string, number>];
      const ratios = heads.map((h) => {
        const r = (last[h.name] ?? 1) / (before[h.name] ?? 1);
        return Number.isFinite(r) ? r : 1;
      });
      const exps = ratios.map((r) => Math.exp(r / DWA_TEMPERATURE));
      const sum = exps.reduce((a, b) => a + b, 0);
      factors = Object.fromEntries(heads.map((h, i) => [h.name, (heads.length * exps[i]!) / sum]));
    },
  };
}
