/**
 * A labelled data file encoded with a model's own encoder (not a new fit), split into training
 * and validation rows the way `train` splits (by group when the spec has one): fine-tuning a
 * pruned model and distilling from a teacher both need inputs that mean what they meant to it.
 */
import { compileEncoder } from "../../shared/encoder/encode.ts";
import type { EncoderState } from "../../shared/encoder/state.ts";
import type { DatasetSpec } from "../../shared/spec.ts";
import { loadTrainedModel, type TrainedModel } from "../artifact/trained-model.ts";
import { loadDataset } from "../data/load-dataset.ts";
import { splitRows } from "../data/split.ts";
import { specForModel } from "../predict/served-model.ts";
import type { LabelledBatch } from "../train/train-network.ts";
import type { FineTuneLog } from "./fine-tune.ts";

export interface LabelledSplit {
  train: LabelledBatch;
  valid: LabelledBatch;
}

export async function loadWithEncoder(
  file: string,
  spec: DatasetSpec,
  encoder: EncoderState,
  plan: { validFraction: number; seed: number },
): Promise<LabelledSplit> {
  const data = await loadDataset(file, spec);
  const { train, valid } = splitRows(data.rows.length, data.groups, plan.validFraction, plan.seed);
  if (train.length === 0 || valid.length === 0)
    throw new Error(
      `--valid-fraction: the split of ${file} left ${train.length} training and ${valid.length} validation rows`,
    );
  const encode = compileEncoder(encoder);
  const part = (idx: readonly number[]): LabelledBatch => ({
    ...encode.encodeRows(idx.map((i) => data.rows[i]!)),
    labels: Object.fromEntries(
      Object.entries(data.labels).map(([task, y]) => [task, Float32Array.from(idx, (i) => y[i]!)]),
    ),
  });
  return { train: part(train), valid: part(valid) };
}

/** What both compression verbs take besides their source model and output directory. */
export interface CompressOptions {
  data: string;
  out: string;
  epochs?: number;
  /** The data's spec; default the source model's spec.json. */
  spec?: string;
  /** Default the source model's training seed. */
  seed?: number;
  validFraction?: number;
  learningRate?: number;
  batchSize?: number;
  backend: string;
  onEpoch?: (log: FineTuneLog) => void;
}

/** The model a verb starts from, its spec and seed, and `data` encoded with its encoder and split. */
export async function loadCompressSource(
  dir: string,
  cmd: CompressOptions,
): Promise<{ model: TrainedModel; spec: DatasetSpec; seed: number; data: LabelledSplit }> {
  const model = await loadTrainedModel(dir);
  const spec = await specForModel(dir, cmd.spec);
  if (!spec) throw new Error(`--spec: ${dir} has no spec.json; name the data's spec with --spec`);
  const seed = cmd.seed ?? model.training.seed;
  const data = await loadWithEncoder(cmd.data, spec, model.encoder, {
    validFraction: cmd.validFraction ?? 0.1,
    seed,
  });
  return { model, spec, seed, data };
}
