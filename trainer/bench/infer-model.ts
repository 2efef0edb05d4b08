/**
 * A trained-model stand-in with random weights, built by the trainer's own architecture init:
 * what the inference benchmark and the exporter tests export without training anything.
 * Only the shape matters to them (latency, graph equality), not what the weights learned.
 */
import * as tf from "@tensorflow/tfjs";
import type { EncoderState, FeatureState } from "../../shared/encoder/state.ts";
import { RESERVED_IDS } from "../../shared/encoder/state.ts";
import type { FeatureSide } from "../../shared/spec.ts";
import type { TrainedModel } from "../artifact/trained-model.ts";
import { initNetwork, type NetworkConfig } from "../models/network.ts";
import { type ArchOptions, DEFAULT_ARCH_OPTIONS } from "../models/types.ts";

export interface SyntheticFeature {
  name: string;
  side: FeatureSide;
  /** Categorical: ids per feature (hash buckets); numeric when absent. */
  ids?: number;
  /** Numeric: also embed quantile buckets (that many boundaries + 1 buckets). */
  buckets?: number;
}

export interface SyntheticModelOptions {
  arch: string;
  features: readonly SyntheticFeature[];
  embeddingDim?: number;
  options?: Partial<ArchOptions>;
  heads?: NetworkConfig["heads"];
  seed?: number;
}

/** An encoder state for the features, in the layout the encoder's fit would give them. */
export function syntheticEncoder(features: readonly SyntheticFeature[]): EncoderState {
  let denseSize = 0;
  let idSlots = 0;
  let vocabSize = 0;
  const states: FeatureState[] = features.map((f): FeatureState => {
    if (f.ids !== undefined) {
      const size = RESERVED_IDS + f.ids;
      const state: FeatureState = {
        kind: "categorical",
        name: f.name,
        side: f.side,
        slot: idSlots++,
        offset: vocabSize,
        size,
        hashBuckets: f.ids,
      };
      vocabSize += size;
      return state;
    }
    const state: FeatureState = {
      kind: "numeric",
      name: f.name,
      side: f.side,
      mean: 0,
      std: 1,
      clip: 5,
      denseOffset: denseSize,
    };
    denseSize += 2;
    const count = f.buckets;
    if (count !== undefined) {
      const size = 1 + count + 1;
      const boundaries = Array.from({ length: count }, (_, i) => -2 + (4 * i) / Math.max(1, count - 1));
      state.buckets = { slot: idSlots++, offset: vocabSize, size, boundaries };
      vocabSize += size;
    }
    return state;
  });
  return { version: 1, trim: true, missing: [""], features: states, denseSize, idSlots, vocabSize };
}

/** Random-weight model of an architecture over the features (tfjs init, any backend). */
export async function syntheticModel(opts: SyntheticModelOptions): Promise<TrainedModel> {
  const encoder = syntheticEncoder(opts.features);
  const config: NetworkConfig = {
    arch: opts.arch,
    options: { ...DEFAULT_ARCH_OPTIONS, ...opts.options },
    embeddingDim: opts.embeddingDim ?? 8,
    denseSize: encoder.denseSize,
    idSlots: encoder.idSlots,
    vocabSize: encoder.vocabSize,
    heads: opts.heads ?? [
      { name: "click", type: "binary" },
      { name: "purchase", type: "binary", given: "click" },
    ],
  };
  const model = await randomWeightModel(config, encoder, opts.seed ?? 1);
  const weights = model.weights;
  // Zero biases would hide a bias added twice (or never): give every bias a small random value.
  let state = (opts.seed ?? 1) * 7919;
  for (const [name, w] of Object.entries(weights)) {
    if (!name.endsWith("/bias")) continue;
    for (let i = 0; i < w.values.length; i++) {
      state = (state * 1103515245 + 12345) % 2147483648;
      w.values[i] = (state / 2147483648 - 0.5) * 0.2;
    }
  }
  return model;
}

/**
 * A model with the network's freshly initialised weights (tfjs init, any backend) and a
 * placeholder training record: what benchmarks and exporter tests export without training.
 */
export async function randomWeightModel(
  config: NetworkConfig,
  encoder: EncoderState,
  seed: number,
): Promise<TrainedModel> {
  const params = initNetwork(config, seed);
  const weights: TrainedModel["weights"] = {};
  for (const [name, p] of Object.entries(params)) {
    weights[name] = { shape: [...p.shape], values: new Float32Array(await p.data()) };
  }
  tf.dispose(Object.values(params));
  return {
    config,
    encoder,
    validation: {},
    training: {
      createdAt: "2025-01-01T00:00:00.000Z",
      data: "synthetic",
      seed,
      epochs: 0,
      bestEpoch: 0,
      taskWeights: {},
      trainRows: 0,
      validRows: 0,
      backend: tf.getBackend(),
      history: [],
    },
    weights,
  };
}

/**
 * The issue-4 reference shape: 12 categorical features of 10k ids (dim 8) and 28 numeric ones,
 * split between the sides as a rerank request would be: user 4 categorical + 14 numeric,
 * context 2 categorical, item 6 categorical + 14 numeric.
 */
export function referenceFeatures(): SyntheticFeature[] {
  const side = (i: number, user: number, context: number): FeatureSide =>
    i < user ? "user" : i < user + context ? "context" : "item";
  return [
    ...Array.from({ length: 12 }, (_, i) => ({ name: `c${i}`, side: side(i, 4, 2), ids: 10_000 })),
    ...Array.from({ length: 28 }, (_, i) => ({ name: `n${i}`, side: side(i, 14, 0) })),
  ];
}

/**
 * The reference MMoE every inference benchmark times: 8 experts of [128, 64], towers [32], no
 * cross layers (the issue-4 shape, fixed so that figures compare across stops); `options` over
 * those.
 */
export function referenceMmoe(options: Partial<ArchOptions> = {}): Promise<TrainedModel> {
  return syntheticModel({
    arch: "mmoe",
    features: referenceFeatures(),
    options: { experts: 8, expertSizes: [128, 64], tower: [32], cross: 0, ...options },
    seed: 4,
  });
}

/** The reference features with every number also as 16 quantile buckets, as fit makes them by default. */
function bucketedReferenceFeatures(): SyntheticFeature[] {
  return referenceFeatures().map((f) => (f.ids === undefined ? { ...f, buckets: 15 } : f));
}

/**
 * The MMoE `npm run train -- --arch mmoe` builds with default flags on the reference features:
 * 4 experts of [64, 32], towers [32], two cross layers of rank 16, embedding dim 8, and every
 * numeric feature also as 16 quantile buckets (15 boundaries), as the encoder's fit makes them by
 * default; `options` over those (e.g. `cross: 0`, for a factorised graph).
 */
export function defaultMmoe(options: Partial<ArchOptions> = {}): Promise<TrainedModel> {
  return syntheticModel({
    arch: "mmoe",
    features: bucketedReferenceFeatures(),
    options,
    seed: 4,
  });
}

/**
 * A serving-size MMoE of the kind `npm run compress -- --distill-from` makes: 2 experts of [32],
 * towers [16], no cross layers, on the same columns as defaultMmoe (numbers also as quantile
 * buckets); `options` over those.
 */
export function smallMmoe(options: Partial<ArchOptions> = {}): Promise<TrainedModel> {
  return syntheticModel({
    arch: "mmoe",
    features: bucketedReferenceFeatures(),
    options: { experts: 2, expertSizes: [32], tower: [16], cross: 0, ...options },
    seed: 4,
  });
}
