/**
 * The embedding table's optimiser by feature (`--embedding-optimizer auto`, the default): sparse
 * Adagrad for the rows of id-like features — categorical features (and bags) with more than
 * ID_FEATURE_ROWS rows: users, items, films — and lazy Adam, as the dense layers, for the rows of
 * small categoricals and of numbers' quantile buckets, which nearly every batch reads.
 *
 * Adagrad is the usual choice for ids in click-through models: a row's rate falls with the
 * gradient it has seen, so rare ids move quickly and frequent ones settle. On rows that every
 * batch reads its rate collapses early: Adagrad for the whole table stalled Fertility's third
 * child on one seed of three (0.5854 against lazy Adam's 0.5922; its features are all small).
 * By feature, mmoe, seeds 42/11/12: MovieLens (671 users, 9,000 films) like 0.7883 → 0.7904 and
 * love 0.7942 → 0.7965, every seed up; Fertility, nmes, Lending Club and the census-like set have
 * no such feature and train as before.
 */
import { type EncoderState, ID_FEATURE_ROWS } from "../../shared/encoder/state.ts";
import type { OptimizerKind } from "./dense-optimizer.ts";
import type { OptimizerOptions } from "./network-optimizer.ts";
import { defaultEmbeddingLearningRate, type EmbeddingOptimizerKind } from "./train-args.ts";

/** A [vocabSize] mask: 1 on the rows of id-like features. */
export function idRows(state: EncoderState, minRows = ID_FEATURE_ROWS): Uint8Array {
  const mask = new Uint8Array(state.vocabSize);
  for (const f of state.features)
    if ((f.kind === "categorical" || f.kind === "multi_categorical") && f.size > minRows)
      mask.fill(1, f.offset, f.offset + f.size);
  return mask;
}

/** The embedding table's optimiser options for a run's arguments and fitted encoder. */
export function embeddingOptions(
  args: {
    embeddingOptimizer: EmbeddingOptimizerKind;
    embeddingLearningRate?: number;
    optimizer: OptimizerKind;
    learningRate: number;
  },
  batchSize: number,
  encoder: EncoderState,
): Pick<OptimizerOptions, "embeddingOptimizer" | "embeddingLearningRate" | "embeddingAdagradRows"> {
  const given = args.embeddingLearningRate;
  if (args.embeddingOptimizer === "auto" && args.optimizer === "adam") {
    const rows = idRows(encoder);
    if (rows.includes(1))
      return {
        embeddingOptimizer: "adam",
        embeddingAdagradRows: rows,
        embeddingLearningRate:
          given ?? defaultEmbeddingLearningRate("adagrad", batchSize, "adam", args.learningRate),
      };
  }
  // Named, or auto with nothing id-like (or beside Adagrad): one optimiser for the whole table.
  const kind = args.embeddingOptimizer === "auto" ? args.optimizer : args.embeddingOptimizer;
  return {
    embeddingOptimizer: kind,
    embeddingLearningRate:
      given ?? defaultEmbeddingLearningRate(kind, batchSize, args.optimizer, args.learningRate),
  };
}
