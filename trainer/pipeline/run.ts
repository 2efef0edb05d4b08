/**
 * One pipeline run (docs/pipeline.md "Steps"):
 *
 *   complete (with data.complete: is the day whole?) → lock → champion (download) → data (check,
 *   convert, stats) → drift → train → stats beside the model → export float32 + int8 → evaluate
 *   candidate and champion on the frozen holdout (and the newest slice) → infra check → gate →
 *   publish + flip the pointer → smoke test (flip back on failure) → record → release the lock
 *
 * Each step logs one line with its duration. Whatever happens, a record is written (the work
 * folder always; the registry unless --dry-run) and the lock released. The pointer moves only
 * after the gate blessed the candidate (or --force-publish said why not), and a failure after it
 * moved puts it back: an error leaves the champion serving.
 */
import { createHash } from "node:crypto";
import { mkdir, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { dirname, join, normalize, sep } from "node:path";
import type { S3Client } from "@aws-sdk/client-s3";
import type { FeatureValues } from "../../shared/encoder/encode.ts";
import type { ModelManifest } from "../../shared/manifest.ts";
import { type DatasetSpec, parseSpec } from "../../shared/spec.ts";
import { type Dataset, loadDataset } from "../data/load-dataset.ts";
import { readSpecFile } from "../data/read-spec.ts";
import { type EvaluationReport, evaluateWithScores } from "../evaluate/evaluate-model.ts";
import { type ExportOptions, exportModelDir } from "../export/export-model.ts";
import { transformedOutputs } from "../metrics/task-metrics.ts";
import { openServedModel } from "../predict/served-model.ts";
import { pickTrainArgs } from "../train/train-args.ts";
import { runTraining } from "../workflows/train-and-report.ts";
import { NotReadyError } from "./complete.ts";
import { checkConfigAgainstSpec, type PipelineConfig, type RegistryConfig } from "./config.ts";
import type { ModelSizes, PointerName, Registry } from "./contracts.ts";
import { checkData, sourceCompleteness } from "./data.ts";
import { dataBefore, downloadedFrom, fileRecord, partlySeenMessage } from "./delivered.ts";
import { driftReport, formatDrift } from "./drift.ts";
import {
  evaluateGate,
  failedRules,
  gateSummary,
  type ModelEvaluation,
  type ModelScores,
  type RowValues,
} from "./gate.ts";
import { infraCheck } from "./infra-check.ts";
import {
  clearIntent,
  describeIntent,
  INTENT_KEY,
  intentRemedy,
  readIntent,
  type SettleSmoke,
  settleIntent,
  writeIntent,
} from "./intent.ts";
import { splitNewest } from "./newest.ts";
import { checkHoldoutFile, HOLDOUT_OVERLAP_MAX, HoldoutRows, overlapError } from "./overlap.ts";
import { prepareData, unchangedSince } from "./prepare.ts";
import { newRunId, RECORD_FORMAT, type RunRecord, type StepRecord, writeRecordFiles } from "./record.ts";
import { putRecord } from "./registry/history.ts";
import {
  type Heartbeat,
  type LockHandle,
  ownerIsGone,
  processOwner,
  startHeartbeat,
  takeLock,
} from "./registry/lock.ts";
import { flipPointer, publishModel, verifyPrefix } from "./registry/publish.ts";
import { smokeTest } from "./smoke.ts";
import { DATA_STATS_FILE, readDataStats, writeDataStats } from "./stats.ts";

export interface RunOptions {
  /** Everything up to the gate's decision; the registry is only read (no lock, no publish, no record). */
  dryRun?: boolean;
  /** Publish although the gate refused or drift said stop, with the reason recorded. */
  forcePublish?: { reason: string };
  /** The registry to use instead of the config's (tests); the caller closes it. */
  registry?: Registry;
  /** One line per step (default: stdout). */
  log?: (line: string) => void;
  /** Where the smoke test's API key is read (default process.env). */
  env?: Record<string, string | undefined>;
  /** The S3 client an s3:// data.source is listed and downloaded with (default: from AWS_* variables). */
  s3?: S3Client;
  /**
   * Stops the run (the CLI's SIGINT and SIGTERM: a cancelled CI job): at the next training batch
   * or step before the pointer moves, as a failure with its record written and the lock
   * released. Once the pointer has moved, a smoke test under way ends at once and the pointer is
   * put back (rolled-back): the model was never seen serving, and the scheduler that sent the
   * signal kills the process seconds later. The record is written and the lock released either
   * way.
   */
  signal?: AbortSignal;
}

export interface RunResult {
  record: RunRecord;
  /**
   * 0 published (a dry run: would publish), 2 refused (gate, drift, a day trained on before), 3
   * not ready (data.complete: the source is not complete; try again later), 1 failed or rolled
   * back.
   */
  exitCode: number;
  /** record.json and record.html in the run's work folder. */
  files: { json: string; html: string };
}

/** The pointer the worker's champion arm reads (edge/model/catalog.ts CURRENT_POINTER). */
const CURRENT: PointerName = "models/current";

/** Files published beside the manifest's own: what the next run warm-starts and checks drift from. */
const EXTRA_FILES = [DATA_STATS_FILE, "spec.json", "training/network.json", "training/weights.bin"];

/**
 * The exit status of a run whose data.source is not complete: neither a refusal (2), which waiting
 * does not change, nor an error (1), so that a scheduler can try again later on this one alone.
 */
export const NOT_READY = 3;

/** Run folders kept under workDir/runs (the newest); older ones are removed after a run. */
const KEEP_RUN_FOLDERS = 5;

/**
 * In a run's folder while it runs: its process (processOwner). Pruning skips a folder that has
 * it unless that process is gone, as runs refused at the lock would otherwise remove the folder
 * of the run holding it.
 */
const RUNNING_FILE = "running";

/** Ends a run early with an outcome that is not an error (drift stop, gate refusal, not ready). */
class Outcome extends Error {
  constructor(
    readonly outcome: RunRecord["outcome"],
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

/** A registry the run opened itself, closed when it ends. */
export type OwnedRegistry = Registry & { close(): Promise<void> };

/** Opens the config's registry: wrangler's local state, or Cloudflare with credentials from the environment. */
export async function openRegistry(
  config: RegistryConfig,
  env: Record<string, string | undefined> = process.env,
  log?: (line: string) => void,
): Promise<OwnedRegistry> {
  if (config.kind === "local") {
    const { localRegistry } = await import("./registry/local.ts");
    return localRegistry({ ...config, ...(log ? { log } : {}) });
  }
  // Loaded only for remote mode: the S3 client is a large import.
  const { remoteRegistry, REMOTE_ENV } = await import("./registry/remote.ts");
  return remoteRegistry({
    bucket: config.bucket,
    namespaceId: config.namespaceId,
    env: {
      [REMOTE_ENV.accountId]: env[config.accountIdEnv],
      [REMOTE_ENV.apiToken]: env[config.apiTokenEnv],
      [REMOTE_ENV.accessKeyId]: env[config.accessKeyIdEnv],
      [REMOTE_ENV.secretAccessKey]: env[config.secretAccessKeyEnv],
    },
  });
}

/** The pointer name a config's publish.pointer means. */
export function pointerName(pointer: "current" | "challenger"): PointerName {
  return pointer === "current" ? "models/current" : "models/challenger";
}

/**
 * What identifies a spec for warm starting: its features, tasks and group, not how the file is
 * laid out (format, delimiter), which the pipeline itself changes when it converts to JSONL.
 */
export function specHash(spec: DatasetSpec): string {
  return sha256(JSON.stringify({ features: spec.features, tasks: spec.tasks, group: spec.group ?? null }));
}

export async function runPipeline(config: PipelineConfig, options: RunOptions = {}): Promise<RunResult> {
  const log = options.log ?? ((line: string) => console.log(line));
  const dryRun = options.dryRun ?? false;
  const startedAt = new Date();
  const runId = newRunId();
  const runDir = join(config.workDir, "runs", runFolderName(startedAt, runId));
  const target = pointerName(config.publish.pointer);
  const steps: StepRecord[] = [];
  const record: RunRecord = {
    format: RECORD_FORMAT,
    kind: "run",
    runId,
    startedAt: startedAt.toISOString(),
    finishedAt: startedAt.toISOString(),
    outcome: "failed",
    exitCode: 1,
    reason: "",
    registry: "",
    pointer: target,
    dryRun,
    ...(options.forcePublish ? { forced: options.forcePublish } : {}),
    steps,
  };

  /** Runs one step, logs its line with the duration, records it; rethrows its error. */
  const step = async <T>(name: string, body: () => Promise<{ value: T; detail: string }>): Promise<T> => {
    stopIfInterrupted(`before ${name}`);
    const t0 = performance.now();
    const seconds = () => (performance.now() - t0) / 1000;
    try {
      const { value, detail } = await body();
      steps.push({ step: name, seconds: seconds(), detail, ok: true });
      log(`${name.padEnd(9)} ${seconds().toFixed(1).padStart(6)} s  ${detail}`);
      return value;
    } catch (error) {
      const detail = error instanceof Outcome ? error.message : `failed: ${messageOf(error)}`;
      steps.push({ step: name, seconds: seconds(), detail, ok: error instanceof Outcome });
      log(`${name.padEnd(9)} ${seconds().toFixed(1).padStart(6)} s  ${detail}`);
      throw error;
    }
  };

  let registry: Registry | undefined = options.registry;
  let owned: OwnedRegistry | undefined;
  let lock: LockHandle | undefined;
  let heartbeat: Heartbeat | undefined;
  /** What the pointers named when the run began: the flip happens only if they still do. */
  let atStart: { current: string | undefined; target: string | undefined } | undefined;
  /** Set once the pointer moved: a later failure puts `previous` back. */
  let flipped: { previous: string | undefined } | undefined;
  /** The flip intent was written (./intent.ts): removed once the pointer is settled and the record stored. */
  let intentWritten = false;
  /** The pointer moved and could not be put back: the intent stays for the next run to settle. */
  let unsettled = false;
  /**
   * Throws when the run was asked to stop (RunOptions.signal) or its heartbeat found the lock
   * lost, while the pointer has not moved.
   */
  function stopIfInterrupted(where: string): void {
    if (flipped) return;
    const signal = options.signal;
    if (signal?.aborted)
      throw new Error(`interrupted (${String(signal.reason ?? "aborted")}) ${where}; nothing was published`);
    if (heartbeat?.lost !== undefined)
      throw new Error(`the run lost its lock ${where}: ${heartbeat.lost}; nothing was published`);
  }

  /**
   * Right before the flip: the lock must still be this run's (renewed now), and the pointers
   * must name what they named when the run began. Otherwise an operator's rollback, unlock or
   * hand edit happened meanwhile, and the candidate was judged against a champion that no longer
   * serves: flipping would silently undo that. A window of one round trip to the pointer store
   * remains, which the registry cannot close (KV has no compare-and-swap).
   */
  async function checkBeforeFlip(reg: Registry): Promise<void> {
    // A signal during the upload: the pointer has not moved yet, so stopping is still free.
    stopIfInterrupted("before the flip");
    if (lock) {
      const lost = await lock.renew();
      if (lost !== undefined)
        throw new Error(`the run lost its lock before the flip: ${lost}; nothing was published`);
    }
    const start = atStart!;
    const named = (p: string | undefined) => (p ? `named ${p}` : "was unset");
    const names = (p: string | undefined) => (p ? `names ${p}` : "is unset");
    const current = await reg.getPointer(CURRENT);
    if (current !== start.current)
      throw new Error(
        `${CURRENT} moved during the run: it ${named(start.current)} when the run began (the champion the candidate was judged against) and ${names(current)} now; nothing was published`,
      );
    if (target !== CURRENT) {
      const now = await reg.getPointer(target);
      if (now !== start.target)
        throw new Error(
          `${target} moved during the run: it ${named(start.target)} when the run began and ${names(now)} now; nothing was published`,
        );
    }
  }

  try {
    await mkdir(runDir, { recursive: true });
    await writeFile(join(runDir, RUNNING_FILE), processOwner(`run ${runId}`));
    record.config = await configRef(config.file);
    if (config.warnings && config.warnings.length > 0) {
      record.warnings = config.warnings;
      for (const warning of config.warnings) log(`config    warning: ${warning}`);
    }
    const apiKey = smokeKey(config, options.env ?? process.env);
    // How this run reaches the worker, for the smoke test after its flip and for settling a flip
    // a killed run left. A signal ends the test, not passed, and the pointer goes back: a
    // cancelled CI job is killed seconds later, and an untested model must not be what it leaves
    // serving.
    const smokeReach: SettleSmoke | undefined = config.smoke && {
      url: config.smoke.url,
      timeoutMs: config.smoke.timeoutS * 1000,
      pollMs: config.smoke.pollS * 1000,
      ...(apiKey ? { apiKey } : {}),
      ...(config.smoke.abSalt !== undefined ? { abSalt: config.smoke.abSalt } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    };
    if (!registry) {
      owned = await openRegistry(config.registry, options.env ?? process.env, log);
      registry = owned;
    }
    const reg = registry;
    record.registry = reg.describe;
    // The spec, and the config against it, before the lock and the champion's download: a task
    // or metric misnamed in the config fails in a second, holding nothing.
    const spec = await readSpecFile(config.data.spec, "data.spec");
    checkConfigAgainstSpec(config, spec);

    // data.complete: a day the export still writes is not read. Asked of the source's listing
    // alone, before the lock and the champion's download: a run that starts early holds nothing,
    // and ends "not-ready" (exit 3) naming what is missing, for its scheduler to try again. The
    // data step asks again of the listing it reads, for what arrived in between.
    const complete = config.data.complete;
    if (complete)
      await step("complete", async () => {
        const found = await sourceCompleteness(config.data.source, complete, {
          ...(options.s3 ? { s3: options.s3 } : {}),
        });
        record.complete = found;
        if (!found.ready) throw new Outcome("not-ready", found.detail, NOT_READY);
        return { value: undefined, detail: found.detail };
      });

    if (!dryRun) {
      lock = await step("lock", async () => {
        const owner = processOwner(`run ${runId}`);
        const handle = await takeLock(reg, { owner, ttlMs: config.lock.ttlMs });
        return { value: handle, detail: `${reg.describe} locks/pipeline for ${owner}` };
      });
      // Renewed while the run works, so a run longer than the TTL keeps it (see startHeartbeat).
      heartbeat = startHeartbeat(lock, config.lock.ttlMs / 4, (error) =>
        log(`lock      renewing failed (tried again at the next beat): ${messageOf(error)}`),
      );
    }

    // A flip a run made and did not see through (killed after it): settled before the champion
    // is read, so the candidate is never judged against, nor warm-started from, a model that
    // serves untested (./intent.ts). A dry run, which holds no lock, only says so.
    const pending = await readIntent(reg);
    if (pending && dryRun) {
      const detail = `${describeIntent(pending)}: left as it is (dry run); ${intentRemedy(pending)}`;
      log(`recover   ${detail}`);
      record.recovered = {
        runId: pending.runId,
        pointer: pending.pointer,
        candidate: pending.candidate.prefix,
        ...(pending.previous ? { previous: pending.previous } : {}),
        action: "left",
        detail,
      };
    } else if (pending) {
      await step("recover", async () => {
        try {
          const settled = await settleIntent(reg, pending, {
            by: `run ${runId}`,
            ...(smokeReach ? { smoke: smokeReach } : {}),
          });
          record.recovered = settled;
          return { value: undefined, detail: settled.detail };
        } catch (error) {
          throw new Error(
            `${describeIntent(pending)}, and settling it failed: ${messageOf(error)}; ${INTENT_KEY} stays: ${intentRemedy(pending)}`,
          );
        }
      });
    }

    // The champion: what models/current names (the model every user gets), downloaded whole.
    const champion = await step("champion", async () => {
      const prefix = await reg.getPointer(CURRENT);
      atStart = { current: prefix, target: target === CURRENT ? prefix : await reg.getPointer(target) };
      if (!prefix) return { value: undefined, detail: `no champion: ${CURRENT} is not set (first run)` };
      const dir = join(runDir, "champion");
      const published = await verifyPrefix(reg, prefix);
      await download(reg, published.prefix, dir);
      const manifest = JSON.parse(await readFile(join(dir, "manifest.json"), "utf8")) as ModelManifest;
      record.champion = { id: manifest.id, version: manifest.version, prefix: published.prefix };
      const hasWeights =
        (await presentFiles(dir, ["training/network.json", "training/weights.bin"])).length === 2;
      return {
        value: { dir, manifest, prefix: published.prefix, hasWeights },
        detail: `${manifest.id} ${manifest.version} from ${published.prefix}`,
      };
    });

    const championSpec = champion ? await readOptionalSpec(join(champion.dir, "spec.json")) : undefined;
    record.spec = {
      path: config.data.spec,
      sha256: specHash(spec),
      ...(championSpec ? { championSha256: specHash(championSpec) } : {}),
    };
    const championStats = champion ? await readDataStats(champion.dir) : undefined;

    const holdoutFile = join(runDir, "data", "holdout.jsonl");
    const prepared = await step("data", async () => {
      // The frozen holdout first, through checkData like the day's data (any format it reads,
      // every row checked, as JSONL): its rows' hashes are what the day's rows are looked up in,
      // so that a day holding the holdout fails here rather than win the gate (./overlap.ts).
      const holdout = config.evaluation.holdout;
      const holdoutRows = new HoldoutRows(spec);
      await checkData([holdout], spec, {
        maxBadRows: 0,
        out: holdoutFile,
        source: holdout,
        onRow: (row) => holdoutRows.addHoldout(row),
      });
      const day = await prepareData(config.data.source, spec, {
        workDir: join(runDir, "data"),
        maxBadRows: config.data.maxBadRows,
        ...(championStats ? { reference: championStats } : {}),
        onRow: (row) => holdoutRows.countData(row),
        ...(complete ? { complete } : {}),
        ...(options.s3 ? { s3: options.s3 } : {}),
      }).catch((error: unknown) => {
        if (!(error instanceof NotReadyError)) throw error;
        record.complete = error.completeness;
        throw new Outcome("not-ready", error.message, NOT_READY);
      });
      // With each file's rows, and an s3:// object's URL: its name in the next runs' comparisons
      // (./delivered.ts), where its download path, in this run's folder, is not.
      const s3Root = join(runDir, "data", "s3");
      const files = await Promise.all(
        day.files.map(async (path, i) => {
          const url = config.data.source.startsWith("s3://") ? downloadedFrom(path, s3Root) : undefined;
          return {
            ...(await fileRecord(path)),
            rows: day.check.files[i]?.rows ?? 0,
            ...(url ? { source: url } : {}),
          };
        }),
      );
      // The digests above read the files again: they must be the bytes the rows came from.
      await unchangedSince(day.read);
      const overlap = holdoutRows.result();
      record.data = {
        files,
        rowsRead: day.check.rows,
        rowsSkipped: day.check.skipped,
        skipped: day.check.reasons,
        holdoutOverlap: overlap,
      };
      const digests = new Map(files.map((f) => [f.path, f.sha256]));
      digests.set(holdout, (await fileRecord(holdout)).sha256);
      await checkHoldoutFile(holdout, day.files, digests);
      if (overlap.share > HOLDOUT_OVERLAP_MAX) throw overlapError(overlap, holdout, day.files);
      // A day delivered again (a retried export, a backfill), or one an earlier run saw part of
      // (it started before the export finished), would be trained on twice where it was before,
      // weighing those rows double through warm start (./delivered.ts).
      const before = await dataBefore(reg, files).catch((error: unknown) => {
        log(`data      could not compare with earlier runs' data: ${messageOf(error)}`);
        return undefined;
      });
      let repeated: { why: string; refusal: string } | undefined;
      if (before?.whole) {
        const whole = before.whole;
        record.data.publishedBefore = { runId: whole.runId, prefix: whole.prefix };
        const why = `the day's data was published before: ${files.length === 1 ? "its file has" : `all ${files.length} of its files have`} the sha256 of the data of run ${whole.runId} (${whole.startedAt}), which published ${whole.prefix}`;
        repeated = {
          why,
          refusal: `${why}; training on it again would weigh it twice (--force-publish --reason overrides)`,
        };
      } else if (before && before.seen.length > 0) {
        record.data.partlyPublishedBefore = before.seen.map((s) => ({
          path: s.file.path,
          runId: s.run.runId,
          prefix: s.run.prefix,
          ...(s.bytesBefore !== undefined ? { bytesBefore: s.bytesBefore } : {}),
        }));
        const why = partlySeenMessage(config.data.source, files, before.seen);
        repeated = {
          why,
          refusal: `${why}; training on the whole day again would weigh those rows twice (point data.source at the new data only, or --force-publish --reason overrides)`,
        };
      }
      if (repeated) {
        if (!options.forcePublish) throw new Outcome("refused", repeated.refusal, 2);
        log(`forced    training although ${repeated.why} (--force-publish: ${options.forcePublish.reason})`);
      }
      const skipped =
        day.check.skipped > 0 ? `, ${day.check.skipped} skipped (${day.check.examples[0]})` : "";
      const shared =
        overlap.holdoutRowsInData > 0
          ? `; ${overlap.holdoutRowsInData} of the holdout's ${overlap.holdoutRows} rows also in it`
          : "";
      // The newest slice is held out of training (./newest.ts says why); the two parts are the
      // day, so the whole copy goes.
      const newest = config.evaluation.newest
        ? await splitNewest(day.data, config.evaluation.newest, {
            newest: join(runDir, "data", "newest.jsonl"),
            train: join(runDir, "data", "train.jsonl"),
          })
        : undefined;
      if (newest) await rm(day.data, { force: true });
      const heldOut = newest ? `; newest slice of ${newest.rows} rows held out of training` : "";
      return {
        value: { ...day, newest, trainData: newest?.train.file ?? day.data },
        detail: `${day.check.kept} rows from ${day.files.length} file(s) of ${config.data.source}${skipped}${shared}${heldOut}`,
      };
    });

    await step("drift", async () => {
      if (!championStats) {
        const skipped = champion ? "the champion has no data-stats.json" : "no champion";
        record.drift = { level: "ok", findings: [], skipped: `not checked: ${skipped}` };
        return { value: undefined, detail: `not checked: ${skipped}` };
      }
      // With the spec's tasks: a regression label's mean moves relatively (in its own units, a
      // 6 % longer dwell reads 0.2 on a log1p scale, past the `rate` stop meant for click rates).
      const report = driftReport(championStats, prepared.statsOnReference ?? prepared.stats, config.drift, {
        tasks: spec.tasks,
      });
      record.drift = report;
      const flagged = formatDrift(report, { flaggedOnly: true }).split("\n");
      const worst = report.findings
        .filter((f) => f.level === report.level && f.level !== "ok")
        .slice(0, 3)
        .map((f) => `${f.subject} ${f.measure} ${f.value.toFixed(3)}`);
      const summary = `${flagged[0]}${worst.length > 0 ? `: ${worst.join(", ")}` : ""}`;
      if (report.level === "stop" && !options.forcePublish)
        throw new Outcome("refused", `${summary} (stop; --force-publish --reason overrides)`, 2);
      return { value: undefined, detail: report.level === "stop" ? `${summary} (forced on)` : summary };
    });

    const candidateDir = join(runDir, "candidate");
    await step("train", async () => {
      const why = warmStartDecision(config, champion, spec, championSpec);
      const warmDir = why.mode === "warm-start" ? champion!.dir : undefined;
      const t0 = performance.now();
      const t = config.training;
      // A loss that goes non-finite stops training at that step with a DivergenceError naming the
      // step, the task and the likely cause: the run fails with it as its reason.
      const summary = await runTraining({
        data: prepared.trainData,
        spec: prepared.spec,
        out: candidateDir,
        // The section's fields are the training arguments of the same names (warmStart aside).
        ...pickTrainArgs(t),
        arch: t.arch,
        ...(warmDir !== undefined ? { initFrom: warmDir } : {}),
        // After every batch: training is most of a run's time, and a cancelled job waits for it.
        onBatch: () => stopIfInterrupted("while training"),
      });
      record.training = {
        mode: why.mode,
        why: why.why,
        arch: t.arch,
        trainRows: summary.trainRows,
        validRows: summary.validRows,
        bestEpoch: summary.bestEpoch,
        seconds: (performance.now() - t0) / 1000,
        validation: summary.validation,
      };
      const carried = summary.warmStart
        ? `; ${summary.warmStart.copied.length} parameters carried over, ${summary.warmStart.fresh.length} fresh`
        : "";
      return {
        value: summary,
        detail: `${why.mode} (${why.why}); ${t.arch} on ${summary.trainRows} rows, best epoch ${summary.bestEpoch} of ${summary.maxEpochs}${carried}`,
      };
    });

    const exported = await step("export", async () => {
      await writeDataStats(candidateDir, prepared.stats);
      const fusion = fusionChoice(config, champion?.manifest, spec);
      const result = await exportModelDir(candidateDir, {
        int8: true,
        ...(fusion.choice ? { fusion: fusion.choice } : {}),
      });
      const m = result.manifest;
      const sizes = {
        modelBytes: m.files["model.onnx"]!.bytes,
        int8Bytes: m.files["model.int8.onnx"]?.bytes,
        manifestBytes: result.manifestBytes,
      };
      record.candidate = {
        id: m.id,
        version: m.version,
        sizes: definedOnly(sizes) as ModelSizes,
        fusion: m.fusion.defaults,
      };
      return {
        value: { manifest: m, sizes: record.candidate.sizes },
        detail: `${m.id} ${m.version}: model.onnx ${sizes.modelBytes} bytes, model.int8.onnx ${sizes.int8Bytes} bytes, manifest.json ${sizes.manifestBytes} bytes; fusion ${fusion.why}`,
      };
    });

    const evalSpec: DatasetSpec = { ...spec, format: "jsonl" };
    const scored = await step("evaluate", async () => {
      const newest = prepared.newest;
      const threshold = config.evaluation.threshold;
      // Each file read once for all four models' passes (candidate and champion, float32 and int8).
      const holdoutData = await loadDataset(holdoutFile, evalSpec);
      const newestData = newest ? await loadDataset(newest.file, evalSpec) : undefined;
      const scoreOf = async (
        dir: string,
        sizes: ModelScores["sizes"],
        hasInt8: boolean,
      ): Promise<ModelScores> => {
        const onHoldout = await evaluateDir(dir, false, holdoutData, evalSpec, threshold);
        const onNewest = newestData && (await evaluateDir(dir, false, newestData, evalSpec, threshold));
        return {
          holdout: onHoldout.evaluation,
          ...(hasInt8
            ? { int8Holdout: (await evaluateDir(dir, true, holdoutData, evalSpec, threshold)).evaluation }
            : {}),
          ...(onNewest ? { newest: onNewest.evaluation } : {}),
          sizes,
          rowScores: { holdout: onHoldout.scores, ...(onNewest ? { newest: onNewest.scores } : {}) },
          groupNdcg10: {
            ...(onHoldout.groupNdcg10 ? { holdout: onHoldout.groupNdcg10 } : {}),
            ...(onNewest?.groupNdcg10 ? { newest: onNewest.groupNdcg10 } : {}),
          },
        };
      };
      const candidate = await scoreOf(candidateDir, exported.sizes, exported.sizes.int8Bytes !== undefined);
      let championScores: ModelScores | undefined;
      let championError: string | undefined;
      if (champion) {
        try {
          // A column the champion reads and the data lacks would score it with that feature
          // missing on every row: lower than it is, to the candidate's advantage.
          const reads = champion.manifest.features.features.map((f) => f.name);
          for (const [data, what] of [
            [holdoutData, "the holdout"],
            [newestData, "the newest slice"],
          ] as const)
            if (data) {
              const lacking = missingColumn(data.rows, reads);
              if (lacking !== undefined)
                throw new Error(`${what} has no column "${lacking}", which the champion reads`);
            }
          const files = champion.manifest.files;
          championScores = await scoreOf(
            champion.dir,
            definedOnly({
              modelBytes: files["model.onnx"]?.bytes ?? 0,
              int8Bytes: files["model.int8.onnx"]?.bytes,
            }) as ModelScores["sizes"],
            "model.int8.onnx" in files,
          );
        } catch (error) {
          championError = messageOf(error);
        }
      }
      record.metrics = {
        holdout: {
          path: config.evaluation.holdout,
          candidate: candidate.holdout,
          ...(championScores ? { champion: championScores.holdout } : {}),
        },
        holdoutInt8: {
          ...(candidate.int8Holdout ? { candidate: candidate.int8Holdout } : {}),
          ...(championScores?.int8Holdout ? { champion: championScores.int8Holdout } : {}),
        },
        ...(newest
          ? {
              newest: {
                description: newest.description,
                ...(candidate.newest ? { candidate: candidate.newest } : {}),
                ...(championScores?.newest ? { champion: championScores.newest } : {}),
              },
            }
          : {}),
      };
      const line = (s: ModelScores | undefined) =>
        s
          ? Object.entries(s.holdout.tasks)
              .filter(([, m]) => m.auc !== undefined)
              .map(([t, m]) => `${t} AUC ${m.auc!.toFixed(4)}`)
              .join(", ")
          : "-";
      return {
        value: {
          candidate,
          champion: championScores,
          championError,
          labels: { holdout: holdoutData.labels, ...(newestData ? { newest: newestData.labels } : {}) },
        },
        detail: `holdout ${candidate.holdout.rows} rows: candidate ${line(candidate)}; champion ${champion ? (championError ? `not evaluated (${championError})` : line(championScores)) : "none"}${newest ? `; newest slice ${newest.rows} rows` : ""}`,
      };
    });

    const infraConfig = config.gate.infra;
    const infra = infraConfig
      ? await step("infra", async () => {
          const caps = infraConfig === true ? {} : infraConfig;
          const result = await infraCheck(candidateDir, {
            caps: definedOnly({ maxManifestBytes: caps.manifestMaxBytes, maxModelBytes: caps.modelMaxBytes }),
          });
          return { value: result, detail: `${result.passed ? "passed" : "FAILED"}: ${result.detail}` };
        })
      : undefined;

    const decision = await step("gate", async () => {
      const d = evaluateGate(config.gate, {
        candidate: scored.candidate,
        ...(scored.champion ? { champion: scored.champion } : {}),
        ...(scored.championError ? { championError: scored.championError } : {}),
        ...(infra ? { infra } : {}),
        labels: scored.labels,
      });
      record.gate = d;
      return { value: d, detail: gateSummary(d) };
    });

    if (!decision.blessed) {
      const why = `the gate refused: ${failedRules(decision)}`;
      if (!options.forcePublish) throw new Outcome("refused", why, 2);
      // Forcing overrides the numbers, never a model the worker cannot load.
      if (infra && !infra.passed)
        throw new Outcome(
          "refused",
          `the infra check failed, which --force-publish does not override: ${infra.detail}`,
          2,
        );
      log(`forced   publishing although ${why} (--force-publish: ${options.forcePublish.reason})`);
    }
    if (dryRun)
      throw new Outcome(
        "dry-run",
        `dry run: would publish ${exported.manifest.id} ${exported.manifest.version} to ${target}${decision.blessed ? "" : " (forced)"}`,
        0,
      );

    const published = await step("publish", async () => {
      const p = await publishModel(reg, candidateDir, {
        extraFiles: await presentFiles(candidateDir, EXTRA_FILES),
      });
      // Written before the flip, with the record as it stands: a run killed after the flip
      // leaves what the next run needs to settle it (./intent.ts).
      await writeIntent(reg, {
        format: 1,
        runId,
        writtenAt: new Date().toISOString(),
        owner: processOwner(`run ${runId}`),
        pointer: target,
        candidate: { prefix: p.prefix, id: p.id, version: p.version },
        ...(atStart!.target ? { previous: atStart!.target } : {}),
        record: structuredClone(record),
      });
      intentWritten = true;
      await checkBeforeFlip(reg);
      // Counted as flipped from just before the write, not after it returns: a write that lands
      // and then reports an error (a timeout) must be undone like any failure after the flip.
      const previous = await flipPointer(reg, target, p, {
        beforeWrite: (before) => {
          flipped = { previous: before };
          record.published = { ...p, pointer: target, ...(before ? { previous: before } : {}) };
        },
      });
      return {
        value: p,
        detail: `${p.prefix} → ${target}${previous ? ` (was ${previous})` : " (was unset)"}`,
      };
    });

    if (smokeReach) {
      const result = await step("smoke", async () => {
        const r = await smokeTest({
          ...smokeReach,
          expected: { id: published.id, version: published.version },
          manifest: exported.manifest,
          pointer: config.publish.pointer,
        });
        record.smoke = r;
        return { value: r, detail: `${r.passed ? "passed" : "FAILED"}: ${r.detail}` };
      });
      if (!result.passed) throw new Error(`smoke test: ${result.detail}`);
    }
    flipped = undefined; // kept: nothing to undo
    record.outcome = "published";
    record.exitCode = 0;
    record.reason = `published ${published.id} ${published.version} to ${target}${decision.blessed ? "" : ` (forced: ${options.forcePublish?.reason})`}`;
  } catch (error) {
    if (error instanceof Outcome) {
      // A dry run ends as one, with the exit status the real run would have had.
      record.outcome = dryRun ? "dry-run" : error.outcome;
      record.exitCode = error.exitCode;
      record.reason =
        dryRun && error.outcome === "refused"
          ? `dry run: would refuse: ${error.message}`
          : dryRun && error.outcome === "not-ready"
            ? `dry run: ${error.message}`
            : error.message;
    } else {
      record.outcome = "failed";
      record.exitCode = 1;
      record.reason = messageOf(error);
      record.error = messageOf(error);
    }
    if (flipped && registry) {
      // The pointer moved and something after it failed: put it back.
      const back = flipped.previous;
      const reg = registry;
      await step("rollback", async () => {
        if (back) await flipPointer(reg, target, back);
        else await reg.deletePointer(target);
        record.rollback = {
          pointer: target,
          ...(record.published ? { from: record.published.prefix } : {}),
          to: back ?? "(unset)",
          why: record.reason,
        };
        record.outcome = "rolled-back";
        record.exitCode = 1;
        return { value: undefined, detail: `${target} back to ${back ?? "(unset)"}` };
      }).catch((rollbackError: unknown) => {
        unsettled = true;
        record.reason = `${record.reason}; rolling back failed too: ${messageOf(rollbackError)} (${INTENT_KEY} stays: the next run puts ${back ?? "nothing"} back)`;
      });
    }
  } finally {
    // Stopped first, whatever fails below: a beat in flight after the release would write the
    // lock back, and a process that lives on (tests, a caller's loop) would hold it for ever.
    await heartbeat?.stop();
    record.finishedAt = new Date().toISOString();
    // Each of the steps below is tried whatever the one before it did: a local record that cannot
    // be written (a full disk, the folder gone) must not keep the registry's record, which
    // `rollback` and `gc` read, from being stored, nor the lock from being released for its TTL.
    let local: { json: string; html: string } | undefined;
    try {
      local = await writeRecordFiles(runDir, record);
    } catch (error) {
      log(`record    failed to write ${join(runDir, "record.json")}: ${messageOf(error)}`);
      if (record.exitCode === 0) record.exitCode = 1;
    }
    const kept = local ? ` and ${local.html}` : " (not written locally)";
    if (!dryRun && registry) {
      try {
        const key = await putRecord(registry, record);
        log(`record    ${key}${kept}`);
        // Settled and recorded: nothing is left for the next run to settle. A record that could
        // not be stored leaves the intent, whose copy of the record the next run stores.
        if (intentWritten && !unsettled)
          await clearIntent(registry, runId).catch((error: unknown) =>
            log(`record    could not remove ${INTENT_KEY} (the next run settles it): ${messageOf(error)}`),
          );
      } catch (error) {
        log(
          `record    failed to store in the registry: ${messageOf(error)} (${local ? `kept in ${local.json}` : "not written locally either"})`,
        );
        if (record.exitCode === 0) record.exitCode = 1;
      }
    } else if (local)
      log(`record    ${local.json} (${dryRun ? "dry run" : "no registry"}: not stored in the registry)`);
    if (lock)
      await lock.release().then(
        (released) => {
          if (!released)
            log(
              `lock      not released: locks/pipeline was no longer this run's (${heartbeat?.lost ?? "taken over or removed"})`,
            );
        },
        (error: unknown) => log(`lock      release failed: ${messageOf(error)}`),
      );
    await owned?.close().catch((error: unknown) => log(`registry  closing failed: ${messageOf(error)}`));
    await rm(join(runDir, RUNNING_FILE), { force: true }).catch(() => undefined);
    await pruneRunFolders(join(config.workDir, "runs"), KEEP_RUN_FOLDERS, runDir).catch((error: unknown) =>
      log(`runs      pruning old run folders failed: ${messageOf(error)}`),
    );
  }
  log(`${record.outcome}: ${record.reason}`);
  return {
    record,
    exitCode: record.exitCode,
    files: { json: join(runDir, "record.json"), html: join(runDir, "record.html") },
  };
}

// ---- steps' helpers --------------------------------------------------------------------------

interface Champion {
  dir: string;
  manifest: ModelManifest;
  prefix: string;
  /** training/network.json + weights.bin came with it: it can be warm-started from. */
  hasWeights: boolean;
}

/** Warm start from the champion unless the config, the spec or the champion's files say otherwise. */
function warmStartDecision(
  config: PipelineConfig,
  champion: Champion | undefined,
  spec: DatasetSpec,
  championSpec: DatasetSpec | undefined,
): { mode: "warm-start" | "scratch"; why: string } {
  if (!config.training.warmStart) return { mode: "scratch", why: "training.warmStart is false" };
  if (!champion) return { mode: "scratch", why: "no champion to start from (first run)" };
  if (!championSpec) return { mode: "scratch", why: "the champion has no spec.json to compare with" };
  const now = specHash(spec);
  const before = specHash(championSpec);
  if (now !== before)
    return { mode: "scratch", why: `the spec changed (hash ${before.slice(0, 12)} → ${now.slice(0, 12)})` };
  if (champion.manifest.arch !== config.training.arch)
    return {
      mode: "scratch",
      why: `the architecture changed (${champion.manifest.arch} → ${config.training.arch})`,
    };
  if (!champion.hasWeights)
    return { mode: "scratch", why: "the champion has no training/ weights (published by hand?)" };
  return { mode: "warm-start", why: `from the champion ${champion.manifest.id}` };
}

/** The config's fusion defaults, else the champion's when it has the same heads, else export's. */
function fusionChoice(
  config: PipelineConfig,
  champion: ModelManifest | undefined,
  spec: DatasetSpec,
): { choice?: ExportOptions["fusion"]; why: string } {
  if (config.fusion) return { choice: config.fusion, why: "from pipeline.json export.fusion" };
  if (!champion) return { why: "export's defaults (no champion)" };
  const heads = spec.tasks.map((t) => t.name).sort();
  const before = champion.heads.map((h) => h.name).sort();
  if (heads.join() !== before.join())
    return { why: `export's defaults (the heads changed: ${before.join(", ")} → ${heads.join(", ")})` };
  const d = champion.fusion.defaults;
  return { choice: { weights: d.weights, mode: d.mode }, why: "carried over from the champion" };
}

/**
 * One model directory's metrics on one loaded file, as the gate and the record read them, and its
 * per-row scores (for the gate's paired bounds).
 */
/** The first of `names` that no row has as a key (a JSONL row leaves out only what it lacks). */
function missingColumn(rows: readonly FeatureValues[], names: readonly string[]): string | undefined {
  const seen = new Set<string>();
  for (const row of rows) for (const key of Object.keys(row)) seen.add(key);
  return names.find((name) => !seen.has(name));
}

async function evaluateDir(
  dir: string,
  int8: boolean,
  data: Dataset,
  spec: DatasetSpec,
  threshold: number,
): Promise<{ evaluation: ModelEvaluation; scores: RowValues; groupNdcg10?: Float64Array }> {
  const model = await openServedModel(dir, int8);
  try {
    const { report, scores, groupNdcg10 } = await evaluateWithScores(model, data, spec, {
      threshold,
      calibration: { bins: 10, binning: "mass" },
    });
    // On the scale the labels are scored on (a log1p head's MSE is over log1p units), as the
    // gate's per-row losses must be to add up to the report's metric.
    const scaled = Object.fromEntries(
      model.manifest.heads.flatMap((h) =>
        scores[h.name] ? [[h.name, transformedOutputs(h, scores[h.name]!)]] : [],
      ),
    );
    return { evaluation: evaluationOf(report), scores: scaled, ...(groupNdcg10 ? { groupNdcg10 } : {}) };
  } finally {
    await model.session.release().catch(() => undefined);
  }
}

function evaluationOf(report: EvaluationReport): ModelEvaluation {
  const reliability = Object.fromEntries(
    Object.entries(report.reliability)
      .filter(([task]) => report.tasks[task]?.auc !== undefined)
      .map(([task, bins]) => [
        task,
        bins.map((b) => ({ meanPredicted: b.meanPredicted, observedRate: b.observedRate })),
      ]),
  );
  return {
    rows: report.rows,
    tasks: report.tasks,
    ...(report.ranking ? { ranking: { ndcg10: report.ranking.ndcg10 } } : {}),
    ...(Object.keys(reliability).length > 0 ? { reliability } : {}),
  };
}

/** Writes every object under `prefix` into `dir`, by its key below the prefix. */
async function download(registry: Registry, prefix: string, dir: string): Promise<void> {
  for (const key of await registry.list(prefix)) {
    const relative = key.slice(prefix.length);
    const path = normalize(join(dir, relative));
    // Keys come from a bucket others can write: none may land outside the folder.
    if (relative === "" || !path.startsWith(`${normalize(dir)}${sep}`))
      throw new Error(`${key}: not a file name inside ${prefix}`);
    const object = await registry.get(key);
    if (!object) throw new Error(`${key} vanished while the champion was downloaded`);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, object.bytes);
  }
}

async function presentFiles(dir: string, names: readonly string[]): Promise<string[]> {
  const present: string[] = [];
  for (const name of names)
    if (
      await stat(join(dir, name)).then(
        (s) => s.isFile(),
        () => false,
      )
    )
      present.push(name);
  return present;
}

async function readOptionalSpec(path: string): Promise<DatasetSpec | undefined> {
  try {
    return parseSpec(JSON.parse(await readFile(path, "utf8")));
  } catch {
    return undefined;
  }
}

async function configRef(file: string): Promise<RunRecord["config"]> {
  try {
    return { file, sha256: sha256(await readFile(file)) };
  } catch {
    return undefined; // a config built in code (tests) has no file
  }
}

/** The smoke test's API key, checked before any work: a missing one would fail only after publishing. */
function smokeKey(config: PipelineConfig, env: Record<string, string | undefined>): string | undefined {
  const name = config.smoke?.apiKeyEnv;
  if (!name) return undefined;
  const key = env[name];
  if (!key) throw new Error(`smoke.apiKeyEnv: the environment variable ${name} is not set`);
  return key;
}

/** A run's folder under workDir/runs: its start time first, so name order is time order. */
function runFolderName(startedAt: Date, runId: string): string {
  return `${startedAt.toISOString().replace(/[-:.]/g, "")}-${runId}`;
}

/**
 * Removes all but the newest `keep` run folders (only names runFolderName makes), leaving alone
 * `own` (the record the CLI points at is in it) and those of runs still in progress
 * (RUNNING_FILE names a live process, or one on another host, which cannot be told from here).
 */
async function pruneRunFolders(dir: string, keep: number, own: string): Promise<void> {
  const names = (await readdir(dir).catch(() => [] as string[]))
    .filter((n) => /^\d{8}T\d{9}Z-[0-9a-f]{8}$/.test(n))
    .sort();
  for (const name of names.slice(0, Math.max(0, names.length - keep))) {
    if (join(dir, name) === own) continue;
    const owner = await readFile(join(dir, name, RUNNING_FILE), "utf8").catch(() => undefined);
    if (owner !== undefined && !ownerIsGone(owner)) continue;
    await rm(join(dir, name), { recursive: true, force: true });
  }
}

function sha256(data: string | Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

function messageOf(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.split("\n")[0]!;
}

function definedOnly<T extends object>(o: T): { [K in keyof T]?: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(o).filter(([, x]) => x !== undefined)) as {
    [K in keyof T]?: Exclude<T[K], undefined>;
  };
}
