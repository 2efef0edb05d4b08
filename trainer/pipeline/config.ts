/**
 * pipeline.json: everything one nightly run needs, checked with valibot and with every default
 * resolved here, once, so the steps read plain values (docs/pipeline.md "Configuration").
 * Relative paths are relative to the config file's folder, so a config and its spec, holdout and
 * state folder can move together. Secrets never live in the file: remote mode names the
 * environment variables that hold them.
 */
import { readFile } from "node:fs/promises";
import { dirname, isAbsolute, resolve } from "node:path";
import * as v from "valibot";
import { MAX_FUSION_WEIGHT } from "../../shared/fusion.ts";
import type { DatasetSpec } from "../../shared/spec.ts";
import { describeIssues, formatIssue } from "../../shared/validation.ts";
import { ARCHITECTURES } from "../models/registry.ts";
import { BACKEND_CHOICES } from "../train/backend.ts";
import { CALIBRATIONS } from "../train/calibrate-heads.ts";
import { OPTIMIZERS } from "../train/dense-optimizer.ts";
import { validationScore } from "../train/early-stopping.ts";
import { MAX_ID_DROPOUT } from "../train/id-dropout.ts";
import { SCHEDULES } from "../train/schedule.ts";
import { WEIGHTINGS } from "../train/task-weighting.ts";
import { DEFAULT_TRAIN_ARGS, EMBEDDING_OPTIMIZERS, type TrainArgs } from "../train/train-args.ts";
import { type CompleteRule, DEFAULT_MARKER } from "./complete.ts";
import { configOverlap } from "./overlap.ts";
import { DEFAULT_BUCKET, DEFAULT_NAMESPACE_ID } from "./registry/keys.ts";

/** A bad config: one line that names the file and the field. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

const Name = v.pipe(v.string(), v.minLength(1, "expected a non-empty string"));
const Path = v.pipe(v.string(), v.minLength(1, "expected a path"));
const PositiveInt = v.pipe(
  v.number(),
  v.integer("expected a positive integer"),
  v.minValue(1, "expected a positive integer"),
);
const NonNegativeInt = v.pipe(
  v.number(),
  v.integer("expected an integer >= 0"),
  v.minValue(0, "expected an integer >= 0"),
);
const Finite = v.pipe(v.number(), v.finite("expected a finite number"));
const NonNegative = v.pipe(Finite, v.minValue(0, "expected a number >= 0"));
const Positive = v.pipe(Finite, v.gtValue(0, "expected a number > 0"));
const Fraction = v.pipe(
  Finite,
  v.gtValue(0, "expected a number in (0, 1)"),
  v.ltValue(1, "expected a number in (0, 1)"),
);
const MARKER_MESSAGE = 'expected true (the file "_SUCCESS") or a marker file\'s name';
/** data.complete.marker: one file name, looked for in the folders that hold the day's files. */
const MarkerName = v.pipe(
  v.string(),
  v.minLength(1, 'expected a non-empty file name, or true for "_SUCCESS"'),
  v.check(
    (name) => !/[/\\]/.test(name),
    "expected a file name, not a path: the marker is looked for in each folder that holds data files",
  ),
  v.check((name) => name !== "." && name !== "..", MARKER_MESSAGE),
);
const Sizes = v.pipe(
  v.array(PositiveInt, "expected a list of layer sizes like [64, 32]"),
  v.minLength(1, "expected at least one layer size"),
);

/**
 * Metrics a gate rule can read: the per-task numbers `evaluate` reports (shared/manifest.ts
 * TaskMetrics), plus "ndcg10", the ranking quality within the spec's groups (no task).
 */
export const GATE_METRICS = [
  "auc",
  "gauc",
  "logloss",
  "ece",
  "calibrationRatio",
  "accuracy",
  "precision",
  "recall",
  "f1",
  "mse",
  "mae",
  "r2",
  "ndcg10",
] as const;
export type GateMetric = (typeof GATE_METRICS)[number];

/** Which way each metric is better; calibrationRatio has no better side (1 is ideal). */
const BETTER: Record<GateMetric, "higher" | "lower" | undefined> = {
  auc: "higher",
  gauc: "higher",
  logloss: "lower",
  ece: "lower",
  calibrationRatio: undefined,
  accuracy: "higher",
  precision: "higher",
  recall: "higher",
  f1: "higher",
  mse: "lower",
  mae: "lower",
  r2: "higher",
  ndcg10: "higher",
};

const INF = Number.POSITIVE_INFINITY;
/** The values each metric can take. */
const RANGE: Record<GateMetric, readonly [number, number]> = {
  auc: [0, 1],
  gauc: [0, 1],
  logloss: [0, INF],
  ece: [0, 1],
  calibrationRatio: [0, INF],
  accuracy: [0, 1],
  precision: [0, 1],
  recall: [0, 1],
  f1: [0, 1],
  mse: [0, INF],
  mae: [0, INF],
  r2: [-INF, 1],
  ndcg10: [0, 1],
};

function rangeText([lo, hi]: readonly [number, number]): string {
  return `${lo === -INF ? "(-∞" : `[${lo}`}, ${hi === INF ? "∞)" : `${hi}]`}`;
}

/** Which evaluation a rule reads: the frozen holdout (default) or the newest slice of the new data. */
const On = v.optional(v.picklist(["holdout", "newest"], 'expected "holdout" or "newest"'), "holdout");

const MetricRef = {
  /** The spec task the metric belongs to; absent only for "ndcg10", which has none. */
  task: v.optional(Name),
  metric: v.picklist(GATE_METRICS, `expected one of ${GATE_METRICS.join(", ")}`),
  on: On,
};

const taskNamed = (r: { task?: string | undefined; metric: GateMetric }) =>
  (r.metric === "ndcg10") === (r.task === undefined);
const TASK_MESSAGE = 'expected "task" for every metric but ndcg10, and none for ndcg10';

/** An absolute bound: the candidate's value must be >= min and/or <= max. */
const FloorRule = v.pipe(
  v.strictObject({
    ...MetricRef,
    /** The lowest value that passes (AUC, R², NDCG: higher is better). */
    min: v.optional(Finite),
    /** The highest value that passes (logloss, ECE, MSE: lower is better). */
    max: v.optional(Finite),
  }),
  v.check((r) => taskNamed(r), TASK_MESSAGE),
  v.check((r) => r.min !== undefined || r.max !== undefined, 'expected "min" or "max"'),
);

/**
 * Metrics a change rule's confidence bound applies to: AUC, the means of a per-row loss, R², ECE
 * and NDCG. The threshold metrics (accuracy, precision, recall, F1 at 0.5) are left out: a
 * retrained model's calibration moves them across the threshold more than its ranking does.
 */
const CONFIDENCE_METRICS: ReadonlySet<GateMetric> = new Set([
  "auc",
  "logloss",
  "mse",
  "mae",
  "r2",
  "ece",
  "ndcg10",
]);

/**
 * A bound on the change against the champion on the same data. `direction` says which way is
 * better; the drop is how far the candidate is worse: champion − candidate for "higher",
 * candidate − champion for "lower". maxDrop bounds it as a difference, maxRatioDrop as a share
 * of the champion's value (0.01: at most 1% worse). A negative bound demands an improvement.
 * With `confidence` (AUC, logloss, MSE, MAE, R², ECE, NDCG), the bound holds the drop's upper confidence bound from a paired
 * bootstrap over the rows, not the drop measured once: the candidate passes only when the data
 * shows, at that confidence, that it is not worse by more than the bound.
 */
const ChangeRule = v.pipe(
  v.strictObject({
    ...MetricRef,
    direction: v.picklist(["higher", "lower"], 'expected "higher" or "lower" (which way is better)'),
    maxDrop: v.optional(Finite),
    maxRatioDrop: v.optional(Finite),
    confidence: v.optional(
      v.pipe(
        Finite,
        v.minValue(0.5, "expected a confidence in [0.5, 1), e.g. 0.95"),
        v.ltValue(1, "expected a confidence in [0.5, 1), e.g. 0.95"),
      ),
    ),
  }),
  v.check((r) => taskNamed(r), TASK_MESSAGE),
  v.check(
    (r) => r.maxDrop !== undefined || r.maxRatioDrop !== undefined,
    'expected "maxDrop" or "maxRatioDrop"',
  ),
  v.check(
    (r) => r.confidence === undefined || CONFIDENCE_METRICS.has(r.metric),
    '"confidence" applies to auc, logloss, mse, mae, r2, ece and ndcg10 rules only (a paired bootstrap over the rows)',
  ),
);

const GateSchema = v.pipe(
  v.strictObject({
    /** Absolute bounds on the candidate alone; the only quality rules a first model (no champion) meets. */
    floors: v.optional(v.array(FloorRule), []),
    /** Bounds on the change against the champion; skipped, and said so, when there is no champion. */
    changes: v.optional(v.array(ChangeRule), []),
    /**
     * int8 parity: on the holdout, float32 AUC − int8 AUC per binary task (or the tasks named) at
     * most maxAucDrop. The worker may serve model.int8.onnx (MTRANK_MODEL_WEIGHTS=int8).
     */
    int8: v.optional(
      v.strictObject({
        maxAucDrop: NonNegative,
        tasks: v.optional(v.array(Name)),
      }),
    ),
    /**
     * Size budgets in bytes: model.onnx, model.int8.onnx and manifest.json (the worker's memory
     * and its R2 reads; the manifest carries every id feature's vocabulary).
     */
    size: v.optional(
      v.pipe(
        v.strictObject({
          modelBytes: v.optional(PositiveInt),
          int8Bytes: v.optional(PositiveInt),
          manifestBytes: v.optional(PositiveInt),
        }),
        v.check(
          (s) => s.modelBytes !== undefined || s.int8Bytes !== undefined || s.manifestBytes !== undefined,
          'expected "modelBytes", "int8Bytes" or "manifestBytes"',
        ),
      ),
    ),
    /**
     * The infra check (infra-check.ts): both graphs are read as the worker reads an R2 model
     * (its size caps, byte counts and sha256), load in onnxruntime-web and answer a fixed request
     * through the worker's own code. On by default (`true`: the worker's default caps); an object
     * gives the caps of a worker whose MTRANK_MANIFEST_MAX_BYTES / MTRANK_MODEL_MAX_BYTES are set;
     * false only to debug the gate.
     */
    infra: v.optional(
      v.union([
        v.boolean(),
        v.strictObject({
          manifestMaxBytes: v.optional(PositiveInt),
          modelMaxBytes: v.optional(PositiveInt),
        }),
      ]),
      true,
    ),
  }),
  // An empty gate would bless anything: a missing rule is an error, not a silent pass.
  v.check(
    (g) => g.floors.length + g.changes.length > 0,
    'no rule configured: name at least one "floors" or "changes" rule (an empty gate would bless any model)',
  ),
);

/** Drift bounds per measure (contracts.ts DriftFinding): psi, js, unseen, rate. */
const DriftBounds = v.strictObject({
  /** Population stability index of a numeric feature's binned distribution. */
  psi: v.optional(NonNegative),
  /** Jensen-Shannon divergence (base 2) of a categorical feature's shares. */
  js: v.optional(NonNegative),
  /** Share of a categorical feature's values never seen in the champion's training data. */
  unseen: v.optional(NonNegative),
  /** Absolute change of a task's label rate (binary) or mean (regression). */
  rate: v.optional(NonNegative),
});

/** What drift.ts reads: the value at which a finding warns and at which it stops the run. */
export interface DriftThresholds {
  warn: Record<DriftMeasure, number>;
  stop: Record<DriftMeasure, number>;
}
export type DriftMeasure = "psi" | "js" | "unseen" | "rate";

/**
 * Defaults: PSI 0.1 / 0.25 (the usual "moderate" and "large shift" marks), JS 0.05 / 0.15,
 * 5% / 20% unseen categories, label rate ±0.02 / ±0.1 absolute.
 */
export const DEFAULT_DRIFT: DriftThresholds = {
  warn: { psi: 0.1, js: 0.05, unseen: 0.05, rate: 0.02 },
  stop: { psi: 0.25, js: 0.15, unseen: 0.2, rate: 0.1 },
};

const NewestSlice = v.union(
  [
    v.strictObject({
      /** The last N rows of the new data, in file order (files in the order data resolves them). */
      rows: PositiveInt,
    }),
    v.strictObject({
      /** Rows whose time (numbers or dates Date.parse reads, as train --time-column) is ... */
      timeColumn: Name,
      /** ... within this many hours of the newest time (default 24: the newest day). */
      hours: v.optional(Positive, 24),
      /** How to read a numeric time: unix seconds (default) or milliseconds. Dates are read as dates. */
      numbers: v.optional(v.picklist(["seconds", "milliseconds"]), "seconds"),
    }),
  ],
  'expected { "rows": N } or { "timeColumn": "...", "hours"?: H }',
);

/**
 * The remote registry's default variable names (registry/remote.ts REMOTE_ENV, repeated here so
 * that reading a config does not load the S3 client).
 */
const REMOTE_ENV = {
  accessKeyId: "R2_ACCESS_KEY_ID",
  secretAccessKey: "R2_SECRET_ACCESS_KEY",
  accountId: "CLOUDFLARE_ACCOUNT_ID",
  apiToken: "CLOUDFLARE_API_TOKEN",
} as const;

const LocalRegistry = v.strictObject({
  local: v.strictObject({
    /** wrangler's state folder, the one `wrangler dev --persist-to DIR` serves from. */
    persistTo: Path,
    /** The R2 bucket name the worker's config binds as MTRANK_MODELS (default "mtrank-models"). */
    bucket: v.optional(Name, DEFAULT_BUCKET),
    /** The KV namespace id the worker's config binds as MTRANK_MODEL_POINTERS (default "mtrank-pointers"). */
    namespaceId: v.optional(Name, DEFAULT_NAMESPACE_ID),
  }),
});

/**
 * Cloudflare's forms, checked before a run trains for minutes and only then fails to publish: a
 * KV namespace id is 32 hex digits (its title, the usual mistake, is not), and an R2 bucket name
 * 3–63 lowercase letters, digits and hyphens, a letter or digit at each end.
 */
const NamespaceId = v.pipe(
  v.string(),
  v.regex(
    /^[0-9a-f]{32}$/i,
    "expected the namespace's id, 32 hex digits (`wrangler kv namespace list` shows it), not its title",
  ),
);
const BucketName = v.pipe(
  v.string(),
  v.regex(
    /^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/,
    "expected an R2 bucket name: 3 to 63 lowercase letters, digits and hyphens, a letter or digit at each end",
  ),
);

const RemoteRegistry = v.strictObject({
  remote: v.strictObject({
    /** The R2 bucket the worker binds as MTRANK_MODELS. */
    bucket: BucketName,
    /** The id of the KV namespace the worker binds as MTRANK_MODEL_POINTERS (32 hex digits). */
    namespaceId: NamespaceId,
    /** Environment variable holding the Cloudflare account id (default CLOUDFLARE_ACCOUNT_ID). */
    accountIdEnv: v.optional(Name, REMOTE_ENV.accountId),
    /** Environment variable holding an API token with KV write access (default CLOUDFLARE_API_TOKEN). */
    apiTokenEnv: v.optional(Name, REMOTE_ENV.apiToken),
    /** Environment variable holding an R2 S3 access key id (default R2_ACCESS_KEY_ID). */
    accessKeyIdEnv: v.optional(Name, REMOTE_ENV.accessKeyId),
    /** Environment variable holding its secret (default R2_SECRET_ACCESS_KEY). */
    secretAccessKeyEnv: v.optional(Name, REMOTE_ENV.secretAccessKey),
  }),
});

const REGISTRY_SHAPE =
  'expected { "local": { "persistTo": DIR } } or { "remote": { "bucket", "namespaceId" } }';

const Registry = v.union([LocalRegistry, RemoteRegistry], REGISTRY_SHAPE);

/**
 * What is wrong with a `registry` value the union refused, said of the one branch it was meant
 * as: a union's own message cannot tell a misspelt field from a config of the wrong kind.
 * Credentials are the case worth its own words: a config is committed, so it names environment
 * variables and never holds a secret.
 */
function registryIssue(value: unknown): string {
  if (typeof value !== "object" || value === null || Array.isArray(value))
    return `registry: ${REGISTRY_SHAPE}`;
  const kinds = Object.keys(value).filter((k) => k === "local" || k === "remote");
  if (kinds.length !== 1) return `registry: ${REGISTRY_SHAPE}`;
  const branch = (value as Record<string, unknown>)[kinds[0]!];
  if (kinds[0] === "remote" && typeof branch === "object" && branch !== null) {
    for (const key of Object.keys(branch)) {
      const env = REMOTE_ENV[key as keyof typeof REMOTE_ENV];
      if (env)
        return `registry.remote.${key}: a config holds no credentials; set the environment variable ${env} (or name another with ${key}Env)`;
    }
  }
  const result = v.safeParse(kinds[0] === "local" ? LocalRegistry : RemoteRegistry, value);
  const first = result.success ? undefined : describeIssues(result.issues)[0];
  return first ? `registry.${formatIssue(first)}` : `registry: ${REGISTRY_SHAPE}`;
}

const Weight = v.pipe(
  v.number(),
  v.finite("expected a finite number"),
  v.minValue(0, "expected a number >= 0"),
  v.maxValue(MAX_FUSION_WEIGHT, `expected a number <= ${MAX_FUSION_WEIGHT}`),
);

const Training = v.strictObject({
  /** Architecture (trainer/models/registry.ts), e.g. "mmoe". */
  arch: v.optional(
    v.picklist(Object.keys(ARCHITECTURES), `expected one of ${Object.keys(ARCHITECTURES).join(", ")}`),
    DEFAULT_TRAIN_ARGS.arch,
  ),
  /**
   * Begin from the champion's weights (train --init-from) when the champion was trained on a spec
   * with the same hash; otherwise, and on the first run, train from scratch (the record says why).
   */
  warmStart: v.optional(v.boolean(), true),
  /** Layer sizes and expert counts (train's --bottom, --tower, --experts, ... as one object). */
  options: v.optional(
    v.strictObject({
      bottom: v.optional(Sizes),
      tower: v.optional(Sizes),
      experts: v.optional(PositiveInt),
      expertSizes: v.optional(Sizes),
      sharedExperts: v.optional(PositiveInt),
      taskExperts: v.optional(PositiveInt),
      levels: v.optional(PositiveInt),
      cross: v.optional(NonNegativeInt),
      crossRank: v.optional(PositiveInt),
      crossLayout: v.optional(v.picklist(["stacked", "parallel"])),
    }),
    {},
  ),
  /**
   * The rest are train's flags of the same names (docs/cli.md "train"; `schedule` is
   * --lr-schedule); absent: train's default.
   */
  epochs: v.optional(PositiveInt),
  seed: v.optional(PositiveInt),
  validFraction: v.optional(Fraction),
  timeColumn: v.optional(Name),
  taskWeights: v.optional(v.record(Name, NonNegative)),
  taskWeighting: v.optional(v.picklist(WEIGHTINGS)),
  rankingLoss: v.optional(Positive),
  calibration: v.optional(v.picklist(CALIBRATIONS)),
  embeddingDim: v.optional(PositiveInt),
  batchSize: v.optional(PositiveInt),
  learningRate: v.optional(Positive),
  optimizer: v.optional(v.picklist(OPTIMIZERS)),
  embeddingOptimizer: v.optional(v.picklist(EMBEDDING_OPTIMIZERS)),
  embeddingLearningRate: v.optional(Positive),
  schedule: v.optional(v.picklist(SCHEDULES)),
  backend: v.optional(v.picklist(BACKEND_CHOICES)),
  earlyStop: v.optional(Name),
  patience: v.optional(PositiveInt),
  l2: v.optional(NonNegative),
  embeddingL2: v.optional(NonNegative),
  kernelL2: v.optional(NonNegative),
  workers: v.optional(PositiveInt),
  averageFolds: v.optional(PositiveInt),
  idDropout: v.optional(
    v.record(
      Name,
      v.pipe(Positive, v.maxValue(MAX_ID_DROPOUT, `expected a share of rows at most ${MAX_ID_DROPOUT}`)),
    ),
  ),
});

// Every field but warmStart is a training argument (../train/train-args.ts) of the same name,
// passed on as it is; an absent one takes its default there.
type TrainingFields = Exclude<keyof v.InferOutput<typeof Training>, "warmStart">;
const trainingFieldsAreTrainArgs: [Exclude<TrainingFields, keyof TrainArgs>] extends [never]
  ? Pick<v.InferOutput<typeof Training>, TrainingFields> extends TrainArgs
    ? true
    : false
  : false = true;
void trainingFieldsAreTrainArgs;

const PipelineSchema = v.strictObject({
  data: v.strictObject({
    /** The new data: a file, a folder of files, a glob or s3://bucket/prefix (data.ts resolveDataFiles). */
    source: Path,
    /** The dataset spec (docs/dataset-spec.md). */
    spec: Path,
    /** Bad rows to skip and count before the run stops (default 0: stop at the first). */
    maxBadRows: v.optional(NonNegativeInt, 0),
    /**
     * When the day is whole (./complete.ts): a marker file the export writes once it has finished
     * (true: Spark's "_SUCCESS"), a quiet period every data file must have been left alone for,
     * or both. Not complete, a run ends "not-ready" (exit 3) before it takes the lock. Absent:
     * a run reads whatever the source holds when it starts.
     */
    complete: v.optional(
      v.pipe(
        v.strictObject({
          marker: v.optional(v.union([v.boolean(), MarkerName], MARKER_MESSAGE)),
          quietMinutes: v.optional(Positive),
        }),
        v.check(
          (c) => (c.marker !== undefined && c.marker !== false) || c.quietMinutes !== undefined,
          'expected "marker" (true for _SUCCESS, or a file name) or "quietMinutes", or both',
        ),
      ),
    ),
  }),
  training: v.optional(Training, {}),
  export: v.optional(
    v.strictObject({
      /**
       * The manifest's fusion defaults (export --fusion-weights / --fusion). Absent: the
       * champion's defaults carry over to the candidate (the first model gets export's defaults).
       */
      fusion: v.optional(
        v.strictObject({
          weights: v.optional(v.record(Name, Weight)),
          mode: v.optional(v.picklist(["sum", "product"])),
        }),
      ),
    }),
    {},
  ),
  evaluation: v.strictObject({
    /**
     * The FROZEN holdout: labelled rows both candidate and champion are scored on, never trained
     * on, the same file run after run so the numbers compare.
     */
    holdout: Path,
    /** Also score both models on the newest slice of the new data (what changed lately). */
    newest: v.optional(NewestSlice),
    /** Probability cut for accuracy, precision, recall, F1 (default 0.5). */
    threshold: v.optional(v.pipe(Finite, v.minValue(0), v.maxValue(1)), 0.5),
  }),
  drift: v.optional(
    v.strictObject({
      /** Findings at or above these values warn (logged, recorded). */
      warn: v.optional(DriftBounds, {}),
      /** Findings at or above these values stop the run (unless --force-publish). */
      stop: v.optional(DriftBounds, {}),
    }),
    {},
  ),
  gate: GateSchema,
  registry: Registry,
  publish: v.optional(
    v.strictObject({
      /** The pointer a blessed candidate goes to: current (serves everyone) or challenger (an A/B arm). */
      pointer: v.optional(
        v.picklist(["current", "challenger"], 'expected "current" or "challenger"'),
        "current",
      ),
    }),
    {},
  ),
  smoke: v.optional(
    v.strictObject({
      /** The serving worker's base URL, e.g. https://rank.example.workers.dev. */
      url: v.pipe(v.string(), v.url("expected an absolute URL")),
      /** How long to wait for the new model to serve (KV propagation can take ~60 s). */
      timeoutS: v.optional(Positive, 120),
      /** Seconds between GET /v1/models polls. */
      pollS: v.optional(Positive, 5),
      /** Environment variable holding an API key for /v1/* (the worker's MTRANK_API_KEYS). */
      apiKeyEnv: v.optional(Name),
      /** The worker's MTRANK_AB_SALT, when it has one: it picks the challenger's users. */
      abSalt: v.optional(v.pipe(v.string(), v.maxLength(256, "expected at most 256 characters"))),
    }),
  ),
  /** Where runs download the champion, train and export (default "out/pipeline" beside the config). */
  workDir: v.optional(Path, "out/pipeline"),
  lock: v.optional(
    v.strictObject({
      /** A lock older than this is taken to be a crashed run's and may be taken over. */
      ttlMinutes: v.optional(Positive, 240),
    }),
    {},
  ),
});

type Parsed = v.InferOutput<typeof PipelineSchema>;
export type FloorRule = Parsed["gate"]["floors"][number];
export type ChangeRule = Parsed["gate"]["changes"][number];
export type GateConfig = Parsed["gate"];
export type NewestSliceConfig = NonNullable<Parsed["evaluation"]["newest"]>;
export type TrainingConfig = Parsed["training"];
export type FusionConfig = NonNullable<Parsed["export"]["fusion"]>;

export type RegistryConfig =
  | { kind: "local"; persistTo: string; bucket: string; namespaceId: string }
  | {
      kind: "remote";
      bucket: string;
      namespaceId: string;
      accountIdEnv: string;
      apiTokenEnv: string;
      accessKeyIdEnv: string;
      secretAccessKeyEnv: string;
    };

/** The config with every default filled in and every path absolute. */
export interface PipelineConfig
  extends Omit<Parsed, "data" | "drift" | "registry" | "publish" | "smoke" | "lock" | "export"> {
  /** The config file, for records and messages. */
  file: string;
  /** data.complete resolved: `marker: true` is "_SUCCESS", `false` none. */
  data: Omit<Parsed["data"], "complete"> & { complete?: CompleteRule };
  /**
   * Settings that are allowed but weaken the gate (a bound that passes anything, no change rule,
   * no smoke test...), one line each naming the field: a run logs and records them.
   */
  warnings?: string[];
  drift: DriftThresholds;
  registry: RegistryConfig;
  publish: { pointer: "current" | "challenger" };
  smoke?: { url: string; timeoutS: number; pollS: number; apiKeyEnv?: string; abSalt?: string };
  lock: { ttlMs: number };
  fusion?: FusionConfig;
}

/** Reads and checks pipeline.json; throws ConfigError with one line naming the field. */
export async function loadConfig(path: string): Promise<PipelineConfig> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    throw new ConfigError(
      `--config: cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? error})`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(`${path}: not JSON (${(error as Error).message})`);
  }
  return parseConfig(json, path);
}

/** Checks a parsed JSON value; `file` names it in errors and anchors relative paths. */
export function parseConfig(json: unknown, file: string): PipelineConfig {
  const result = v.safeParse(PipelineSchema, json);
  if (!result.success) {
    const first = describeIssues(result.issues)[0];
    const message =
      first?.field === "registry"
        ? registryIssue((json as { registry?: unknown }).registry)
        : first
          ? formatIssue(first)
          : "invalid config";
    throw new ConfigError(`${file}: ${message}`);
  }
  const c = result.output;
  const base = dirname(resolve(file));
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(base, p));
  const drift: DriftThresholds = {
    warn: { ...DEFAULT_DRIFT.warn, ...definedOnly(c.drift.warn) },
    stop: { ...DEFAULT_DRIFT.stop, ...definedOnly(c.drift.stop) },
  };
  for (const m of Object.keys(drift.warn) as DriftMeasure[])
    if (drift.warn[m] > drift.stop[m])
      throw new ConfigError(
        `${file}: drift.warn.${m}: ${drift.warn[m]} is above drift.stop.${m} (${drift.stop[m]}); a finding would stop before it warned`,
      );
  const warnings = checkGate(c, file);
  // The holdout is read from disk (checkData of one file): a URL would be taken for a path.
  if (isUrl(c.evaluation.holdout))
    throw new ConfigError(
      `${file}: evaluation.holdout: ${c.evaluation.holdout} is a URL; the holdout is a local file (download it once and name the file)`,
    );
  // An s3:// source is a URL, not a path: left as written.
  const source = isUrl(c.data.source) ? c.data.source : abs(c.data.source);
  const holdout = abs(c.evaluation.holdout);
  // A holdout the config itself puts in the day's data is refused now, before the run downloads
  // the champion and converts the day to find it (the run still checks links, copies and rows).
  const overlap = configOverlap(source, holdout);
  if (overlap)
    throw new ConfigError(
      `${file}: evaluation.holdout: ${holdout} ${overlap}: a candidate trained on the holdout would be judged on rows it has seen; keep evaluation.holdout out of data.source`,
    );
  const marker = c.data.complete?.marker === true ? DEFAULT_MARKER : c.data.complete?.marker || undefined;
  const quietMinutes = c.data.complete?.quietMinutes;
  const complete: CompleteRule | undefined = c.data.complete && {
    ...(marker !== undefined ? { marker } : {}),
    ...(quietMinutes !== undefined ? { quietMinutes } : {}),
  };
  const registry: RegistryConfig =
    "local" in c.registry
      ? { kind: "local", ...c.registry.local, persistTo: abs(c.registry.local.persistTo) }
      : { kind: "remote", ...c.registry.remote };
  const { export: exportConfig, lock, smoke, ...rest } = c;
  return {
    ...rest,
    file: resolve(file),
    warnings,
    data: {
      source,
      spec: abs(c.data.spec),
      maxBadRows: c.data.maxBadRows,
      ...(complete ? { complete } : {}),
    },
    evaluation: { ...c.evaluation, holdout },
    drift,
    registry,
    publish: { pointer: c.publish.pointer },
    ...(smoke ? { smoke: { ...smoke, url: smoke.url.replace(/\/+$/, "") } } : {}),
    workDir: abs(c.workDir),
    lock: { ttlMs: lock.ttlMinutes * 60_000 },
    ...(exportConfig.fusion ? { fusion: exportConfig.fusion } : {}),
  };
}

/**
 * Gate values that would invert it or that no metric value can reach throw ConfigError naming
 * the field: one typo in a direction would otherwise bless every worse model, silently. Values
 * that are possible but make the gate weak come back as warnings.
 */
function checkGate(c: Parsed, file: string): string[] {
  const fail = (field: string, message: string): never => {
    throw new ConfigError(`${file}: ${field}: ${message}`);
  };
  const warnings: string[] = [];
  c.gate.floors.forEach((rule, i) => {
    const field = `gate.floors.${i}`;
    const [lo, hi] = RANGE[rule.metric];
    for (const key of ["min", "max"] as const) {
      const x = rule[key];
      if (x !== undefined && (x < lo || x > hi))
        fail(
          `${field}.${key}`,
          `${rule.metric} lies in ${rangeText(RANGE[rule.metric])}: ${x} is outside it`,
        );
    }
    const better = BETTER[rule.metric];
    if (better === "lower" && rule.max === undefined)
      warnings.push(
        `${field}: only "min" on ${rule.metric}, which is better lower: the floor bounds the good side`,
      );
    if (better === "higher" && rule.min === undefined)
      warnings.push(
        `${field}: only "max" on ${rule.metric}, which is better higher: the floor bounds the good side`,
      );
  });
  c.gate.changes.forEach((rule, i) => {
    const field = `gate.changes.${i}`;
    const better = BETTER[rule.metric];
    if (better === undefined)
      fail(
        `${field}.metric`,
        `${rule.metric} has no better direction (1 is ideal): bound it with a floor's min and max`,
      );
    if (rule.direction !== better)
      fail(
        `${field}.direction`,
        `${better} ${rule.metric} is better, not ${rule.direction} (the rule would bless a worse model)`,
      );
    const range = RANGE[rule.metric];
    const width = range[1] - range[0];
    if (rule.maxDrop !== undefined && Number.isFinite(width)) {
      if (Math.abs(rule.maxDrop) > width)
        fail(
          `${field}.maxDrop`,
          `${rule.metric} lies in ${rangeText(range)}: a drop bound of ${rule.maxDrop} is outside what it can move`,
        );
      if (rule.maxDrop >= width)
        warnings.push(
          `${field}.maxDrop: ${rule.maxDrop} is the whole range of ${rule.metric} (${rangeText(range)}): the rule passes any candidate`,
        );
    }
    if (rule.maxRatioDrop !== undefined && rule.maxRatioDrop >= 1)
      warnings.push(
        `${field}.maxRatioDrop: ${rule.maxRatioDrop} allows a candidate ${rule.maxRatioDrop * 100}% worse than the champion`,
      );
    if (rule.confidence !== undefined && rule.confidence < 0.8)
      warnings.push(
        `${field}.confidence: ${rule.confidence} is below 0.8: the bound is about the drop measured once, not a guarantee`,
      );
  });
  const int8 = c.gate.int8?.maxAucDrop;
  if (int8 !== undefined && int8 > 1)
    fail("gate.int8.maxAucDrop", `AUC lies in [0, 1]: a drop bound of ${int8} is outside what it can move`);
  if (c.gate.changes.length === 0)
    warnings.push(
      "gate.changes: none: once a champion exists, candidates are judged by floors alone, never against the model that serves",
    );
  if (c.gate.infra === false)
    warnings.push(
      "gate.infra: false: the candidate is published without loading it as the worker does (meant only to debug the gate)",
    );
  if (!c.smoke)
    warnings.push("smoke: none: nothing checks that the worker serves the new model after the flip");
  if (c.lock.ttlMinutes < 30)
    warnings.push(
      `lock.ttlMinutes: ${c.lock.ttlMinutes} is under 30: a training fit longer than that can lose the lock (the run then does not publish)`,
    );
  return warnings;
}

/**
 * What the schema cannot know without the spec: every task a rule or the training options name
 * exists, and a metric fits its task's type. Throws ConfigError naming the field.
 */
export function checkConfigAgainstSpec(config: PipelineConfig, spec: DatasetSpec): void {
  const tasks = new Map(spec.tasks.map((t) => [t.name, t.type]));
  const names = [...tasks.keys()].join(", ");
  const fail = (field: string, message: string): never => {
    throw new ConfigError(`${config.file}: ${field}: ${message}`);
  };
  const regressionOnly = new Set<GateMetric>(["mse", "mae", "r2"]);
  const rules: [string, FloorRule | ChangeRule][] = [
    ...config.gate.floors.map((r, i) => [`gate.floors.${i}`, r] as [string, FloorRule]),
    ...config.gate.changes.map((r, i) => [`gate.changes.${i}`, r] as [string, ChangeRule]),
  ];
  for (const [field, rule] of rules) {
    if (rule.metric === "ndcg10") {
      if (!spec.group) fail(`${field}.metric`, "ndcg10 needs a spec with a group (ranked lists)");
      continue;
    }
    const type = tasks.get(rule.task!);
    if (!type) fail(`${field}.task`, `no task named "${rule.task}" (tasks: ${names})`);
    if ((type === "regression") !== regressionOnly.has(rule.metric))
      fail(`${field}.metric`, `${rule.metric} does not apply to the ${type} task "${rule.task}"`);
  }
  for (const [i, task] of (config.gate.int8?.tasks ?? []).entries()) {
    const type = tasks.get(task);
    if (type !== "binary") fail(`gate.int8.tasks.${i}`, `"${task}" is not a binary task (tasks: ${names})`);
  }
  if (config.training.earlyStop !== undefined) {
    const heads = spec.tasks.map((t) => ({ name: t.name, type: t.type }));
    try {
      validationScore(config.training.earlyStop, heads);
    } catch (error) {
      fail("training.earlyStop", (error as Error).message.replace(/^--early-stop: /, ""));
    }
  }
  // Whether each is id-like (over 100 values) only the fitted encoder knows; train names it then.
  for (const name of Object.keys(config.training.idDropout ?? {})) {
    const feature = spec.features.find((f) => f.name === name);
    if (feature?.type !== "categorical")
      fail(
        `training.idDropout.${name}`,
        feature
          ? `"${name}" is a ${feature.type} feature; id dropout reads a categorical id as never seen`
          : `no feature named "${name}" (categorical features: ${
              spec.features
                .filter((f) => f.type === "categorical")
                .map((f) => f.name)
                .join(", ") || "none"
            })`,
      );
  }
  for (const task of Object.keys(config.training.taskWeights ?? {}))
    if (!tasks.has(task)) fail(`training.taskWeights.${task}`, `no task named "${task}" (tasks: ${names})`);
  for (const head of Object.keys(config.fusion?.weights ?? {}))
    if (!tasks.has(head)) fail(`export.fusion.weights.${head}`, `no task named "${head}" (tasks: ${names})`);
}

function isUrl(source: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(source);
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, x]) => x !== undefined)) as Partial<T>;
}
