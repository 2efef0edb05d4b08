/**
 * npm run bench:quality: held-out AUC of the trainer's architectures, trained with default flags,
 * against reference models on the same files.
 *
 * - census: a census-like tabular set (simulate/census.ts; 100k train, 50k test rows) against
 *   one-hot logistic regression and gradient-boosted trees with default settings (scikit-learn,
 *   test/tools/baselines.py), and tuned trees (below).
 * - thresholds: a tabular world where trees beat logistic regression by far (step functions of
 *   skewed numbers, threshold interactions, categoricals up to 1,000 values, uninformative
 *   columns; simulate/threshold-world.ts; 100k train, 50k test rows), against the same baselines
 *   and the oracle.
 * - simulator: the recommendation simulator (train/test split by request), where the oracle
 *   AUC from the true probabilities is the ceiling.
 * - sparse: the simulator with purchases as sparse as shop logs (6% of clicks, 0.8% of exposures;
 *   16k requests train, 24k test so that the test file holds ~1,900 purchases). Here sharing can
 *   pay: the purchase task alone sees ~1,300 positives.
 *
 * Both simulator suites also train ESMM and the naive CTCVR (click model × a conversion model
 * trained on clicked rows only) and report calibration in equal-mass bins, against the labels
 * and, free of label noise, against the probabilities the simulator drew the labels from.
 *
 * - your files: `--train F --test G --spec S [--name N]` runs the same comparison (the baselines,
 *   then each architecture) on any train/test pair a dataset spec describes, e.g. the real public
 *   sets test/tools/real-data.R writes. Multi-valued columns reach the baselines as 0/1 columns.
 *
 * Tuned trees (test/tools/tuned-trees.py; `--no-tuned` skips them) are the anchor that matters
 * wherever the baselines run: default-settings trees are easy to beat, trees with a little care
 * are what a network has to beat on tabular data. XGBoost (hist, native categorical splits;
 * categorical columns of over 1,000 values target-encoded), early stopping on 15% of the training
 * file, per task the best on that split of learning rate {0.03, 0.1} × leaves {15, 63}, scored on
 * the test file; the row records the xgboost version and each task's chosen setting. The Python
 * tools run with /usr/bin/python3; the bench installs python3-sklearn and python3-xgboost with
 * apt-get when it runs as root (bench/python-tools.ts), else skips those rows and names the
 * command to run.
 *
 * `--seeds 42,11,12` trains every architecture once per training seed (same data) and adds a mean
 * row per architecture: differences between architectures of a few thousandths are within the
 * seed-to-seed spread, so compare means. The tuned trees run once per seed too (it draws their
 * validation split): on a small file one split moved them by 0.03.
 *
 * Under the table, each architecture's mean AUC minus the logistic regression's and the tuned
 * trees' mean, with a 95 % interval from a paired bootstrap over the test rows
 * (./paired-differences.ts): a difference inside it is one the test file cannot tell from noise.
 *
 * Writes out/bench/quality.json and prints a table. Each model trains in this process on the
 * best backend; the test files are scored by the exported int8 ONNX graph through onnxruntime (the
 * float32 graph's AUC is kept beside it in the JSON).
 *
 *   npm run bench:quality [-- --suite census|thresholds|simulator|sparse] [--arch mmoe,single]
 *     [--seeds 42,11,12] [--quick] [--no-tuned]
 *   npm run bench:quality -- --train F --test G --spec S [--name N] [--arch ...] [--seeds ...]
 *     [--cold COLUMN | --cv K [--rounds R]]
 *
 * `--cold COLUMN` (your files) scores values the training file never had: ./cold-split.ts.
 * `--cv K` (your files) joins them and cross-validates every model over K folds, differences paired
 * by fold (`--rounds R`: R deals, the error corrected for their overlap): ./cv-folds.ts.
 */
import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Command } from "commander";
import type { DatasetSpec } from "../shared/spec.ts";
import { shareList } from "../trainer/cli/run-cli.ts";
import { auc } from "../trainer/core/metrics.ts";
import { type Dataset, loadDataset } from "../trainer/data/load-dataset.ts";
import { readSpecFile } from "../trainer/data/read-spec.ts";
import { evaluateModel, evaluateWithScores } from "../trainer/evaluate/evaluate-model.ts";
import { exportModelDir } from "../trainer/export/export-model.ts";
import { calibrationCurve, expectedCalibrationError } from "../trainer/metrics/calibration.ts";
import { evaluateTask } from "../trainer/metrics/task-metrics.ts";
import { openServedModel, scoreRows } from "../trainer/predict/served-model.ts";
import { MAX_ID_DROPOUT } from "../trainer/train/id-dropout.ts";
import { runTraining } from "../trainer/workflows/train-and-report.ts";
import { coldSplit } from "./cold-split.ts";
import { cvFolds, meanAndError } from "./cv-folds.ts";
import { LOGISTIC, PairedScores, printVersus, TUNED_TREES, type Versus } from "./paired-differences.ts";
import { sklearnBaselines, type TunedSetting, tunedTrees } from "./python-tools.ts";
import { censusSuite, fmtScores, type SuiteFiles, simulatorSuite, thresholdSuite } from "./suites.ts";

const OUT = "out/bench/quality.json";
/**
 * Equal-mass bins: a rare task's probabilities all sit under 0.1, where ten equal-width bins
 * collapse into one and ECE measures only the mean against the rate (the same for every model).
 */
const CALIBRATION = { bins: 20, binning: "mass" } as const;
const WORK = "out/bench/quality";

interface Row {
  suite: string;
  model: string;
  seconds: number;
  /** Test AUC per binary task; a trained network's from its int8 graph (the served form). */
  auc: Record<string, number>;
  /** A trained network: the float32 graph's test AUC per task. */
  float32Auc?: Record<string, number>;
  /** Mean squared error per regression task on the test file, after the task's transform (log1p). */
  mse?: Record<string, number>;
  /** Expected calibration error per binary task on the test file (CALIBRATION: equal-mass bins). */
  ece?: Record<string, number>;
  /** Simulator suites: ECE against the probabilities the labels were drawn from (labelProbabilities). */
  truthEce?: Record<string, number>;
  bestEpoch?: number;
  /** The training seed, when the run used several. */
  seed?: number;
  /** Tuned trees: the library that trained them and its version ("xgboost 1.7.4"). */
  version?: string;
  /** Tuned trees: per task, the setting its validation split chose and the trees kept (best round). */
  chosen?: Record<string, TunedSetting>;
  /**
   * An architecture's mean row (its only row with one seed): its mean test AUC minus each paired
   * baseline's, per binary task, with a paired bootstrap's 95 % interval (./paired-differences.ts).
   */
  versus?: Versus;
}

const program = new Command("bench:quality")
  .option("--suite <name>", "census, thresholds, simulator, sparse or all", "all")
  .option("--arch <list>", "architectures to train", "mmoe,single,shared-bottom,ple")
  .option("--seeds <list>", "training seeds: each architecture trains once per seed", "42")
  .option("--quick", "smaller data sets (a smoke run)")
  .option("--train <file>", "your training file (with --test and --spec, instead of a suite)")
  .option("--test <file>", "your test file")
  .option("--spec <file>", "the dataset spec of both files")
  .option("--name <name>", "the name your files' rows get in the table", "files")
  .option("--no-tuned", "skip the tuned trees (XGBoost) next to the scikit-learn baselines")
  .option(
    "--cv <k>",
    "with your files: join them, deal the rows into K folds, score every model on each fold after training on the others, and pair differences by fold",
  )
  .option(
    "--rounds <r>",
    "with --cv: deal the rows R times and pair over all R·K folds (the standard error corrected for their overlapping training sets)",
    "1",
  )
  .option(
    "--id-dropout <list>",
    "train the networks with train's --id-dropout, e.g. movie=0.1 (with --cold: what new items gain, against what the known ones pay in a run without --cold)",
    shareList(MAX_ID_DROPOUT),
  )
  .option(
    "--cold <column>",
    "with your files: a tenth of this column's values leave the training file, and only their test rows are scored (new users or items)",
  )
  .parse();
const opts = program.opts<{
  suite: string;
  arch: string;
  seeds: string;
  quick?: boolean;
  train?: string;
  test?: string;
  spec?: string;
  name: string;
  tuned: boolean;
  cold?: string;
  idDropout?: Record<string, number>;
  cv?: string;
  rounds: string;
}>();
const ownFiles = await coldFiles(ownSuite(opts), opts.cold);
const archs = opts.arch.split(",").map((s) => s.trim());
const seeds = opts.seeds.split(",").map((s) => {
  const seed = Number(s);
  if (!Number.isSafeInteger(seed) || seed < 0)
    throw new Error(`--seeds: expected integers like 42,11,12, got "${s}"`);
  return seed;
});
const scale = opts.quick ? 0.1 : 1;

const results: Row[] = [];
const paired = new PairedScores();
/** Each suite's test file, loaded once for every model that scores it (testData). */
const testFiles = new Map<string, Promise<Dataset>>();
// Your own files replace the built-in suites.
const chosen = ownFiles ? "none" : opts.suite;
const cvSuites: string[] = [];
if (opts.rounds !== "1" && opts.cv === undefined) program.error("bench:quality: --rounds goes with --cv");
if (ownFiles && opts.cv !== undefined) {
  if (opts.cold !== undefined) program.error("bench:quality: --cv and --cold do not go together");
  const spec = await readSpecFile(ownFiles.spec);
  const rounds = Number(opts.rounds);
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > 100)
    program.error(`bench:quality: --rounds: expected a whole number from 1 to 100, got "${opts.rounds}"`);
  for (let r = 0; r < rounds; r++) {
    const dir = rounds > 1 ? join(WORK, "cv", `round-${r + 1}`) : join(WORK, "cv");
    const folds = await cvFolds(ownFiles, Number(opts.cv), spec, dir, r);
    for (const [f, files] of folds.entries()) {
      const suite = `${opts.name}${rounds > 1 ? ` round ${r + 1}` : ""} fold ${f + 1}`;
      cvSuites.push(suite);
      results.push(...baselines(suite, files));
      results.push(...(await trainEach(suite, archs, files)));
    }
  }
} else if (ownFiles) {
  results.push(...baselines(opts.name, ownFiles));
  results.push(...(await trainEach(opts.name, archs, ownFiles)));
}
if (chosen === "all" || chosen === "census") {
  const files = censusSuite(join(WORK, "census"), Math.round(100_000 * scale), Math.round(50_000 * scale));
  results.push(...baselines("census", files));
  results.push(...(await trainEach("census", archs, files)));
}
if (chosen === "all" || chosen === "thresholds") {
  const files = thresholdSuite(
    join(WORK, "thresholds"),
    Math.round(100_000 * scale),
    Math.round(50_000 * scale),
  );
  const test = await loadDataset(files.test, await readSpecFile(files.spec));
  results.push(oracle("thresholds", test), ...baselines("thresholds", files));
  results.push(...(await trainEach("thresholds", archs, files)));
}
if (chosen === "all" || chosen === "simulator") {
  const files = await simulatorSuite(join(WORK, "simulator"), Math.round(20_000 * scale));
  const test = await simulatedTest(files);
  results.push(oracle("simulator", test.data));
  results.push(...(await trainEach("simulator", [...archs, "esmm"], files, test)));
  results.push(...(await naiveProducts("simulator", files, test)));
}
if (chosen === "all" || chosen === "sparse") {
  const files = await simulatorSuite(join(WORK, "sparse"), Math.round(40_000 * scale), {
    purchaseBias: -3.6,
    trainFraction: 0.4,
  });
  const test = await simulatedTest(files);
  results.push(oracle("sparse", test.data));
  results.push(...(await trainEach("sparse", [...archs, "esmm"], files, test)));
  results.push(...(await naiveProducts("sparse", files, test)));
}

await mkdir("out/bench", { recursive: true });
const cvShape = { k: Number(opts.cv), rounds: Number(opts.rounds) };
const cv = cvSuites.length > 0 ? crossValidated(cvSuites, results, 1 / (cvShape.k - 1)) : undefined;
await writeFile(
  OUT,
  `${JSON.stringify({ createdAt: new Date().toISOString(), results, ...(cv ? { cv, cvShape } : {}) }, null, 1)}\n`,
);
printTable(results);
printVersus(results);
if (cv) printCrossValidated(opts.name, cvShape, cv);
console.log(`wrote ${OUT}`);

/** --cold: your files split so that the test rows hold only values the training file lacks. */
async function coldFiles(files: SuiteFiles | undefined, column: string | undefined) {
  if (column === undefined) return files;
  if (!files) return program.error("bench:quality: --cold needs --train, --test and --spec");
  const spec = await readSpecFile(files.spec);
  const split = await coldSplit(files, column, spec, join(WORK, "cold"));
  console.log(
    `--cold ${column}: a tenth of its values held out; ${split.rows.train} training rows, ${split.rows.test} test rows with held-out values`,
  );
  return split;
}

/** --train/--test/--spec: all three or none, each an existing file. */
function ownSuite(o: { train?: string; test?: string; spec?: string }): SuiteFiles | undefined {
  const given = (["train", "test", "spec"] as const).filter((k) => o[k] !== undefined);
  if (given.length === 0) return undefined;
  const missing = (["train", "test", "spec"] as const).filter((k) => o[k] === undefined);
  if (missing.length > 0) program.error(`bench:quality: --${missing[0]} is needed with --${given[0]}`);
  for (const k of given) if (!existsSync(o[k]!)) program.error(`bench:quality: --${k} ${o[k]}: no such file`);
  return { train: o.train!, test: o.test!, spec: o.spec! };
}

/**
 * Every architecture once per seed, then (with several seeds) each architecture's mean; with a
 * simulated test file, also its calibration against the probabilities the labels were drawn from.
 */
async function trainEach(
  suite: string,
  list: readonly string[],
  files: SuiteFiles,
  simulated?: SimulatedTest,
): Promise<Row[]> {
  const rows: Row[] = [];
  for (const seed of seeds)
    for (const arch of list) rows.push(await trainAndTest(suite, arch, files, seed, simulated));
  return withVersus(suite, withMeans(suite, rows));
}

/** Each architecture's mean row (its only row with one seed) with its paired differences. */
function withVersus(suite: string, rows: Row[]): Row[] {
  return rows.map((row) => {
    if (row.seed !== undefined && seeds.length > 1) return row;
    const versus = paired.versus(suite, row.model.replace(/ \(mean\)$/, ""));
    return versus ? { ...row, versus } : row;
  });
}

/** Per-seed rows as they are with one seed; with several, plus a mean row per model. */
function withMeans(suite: string, rows: Row[]): Row[] {
  if (seeds.length < 2) return rows.map(({ seed: _, ...row }) => row);
  const means: Row[] = [];
  for (const model of [...new Set(rows.map((r) => r.model))]) {
    const runs = rows.filter((r) => r.model === model);
    const meanOf = (pick: (r: Row) => Record<string, number> | undefined) => {
      const tasks = Object.keys(pick(runs[0]!) ?? {});
      return Object.fromEntries(
        tasks.map((t) => [t, runs.reduce((a, r) => a + (pick(r)?.[t] ?? Number.NaN), 0) / runs.length]),
      );
    };
    means.push({
      suite,
      model: `${model} (mean)`,
      seconds: runs.reduce((a, r) => a + r.seconds, 0) / runs.length,
      auc: meanOf((r) => r.auc),
      ...(runs[0]!.float32Auc ? { float32Auc: meanOf((r) => r.float32Auc) } : {}),
      ...(runs[0]!.mse ? { mse: meanOf((r) => r.mse) } : {}),
      ece: meanOf((r) => r.ece),
      ...(runs[0]!.truthEce ? { truthEce: meanOf((r) => r.truthEce) } : {}),
    });
  }
  return [...rows, ...means];
}

async function trainAndTest(
  suite: string,
  arch: string,
  files: SuiteFiles,
  seed: number,
  simulated: SimulatedTest | undefined,
): Promise<Row> {
  const out = join(WORK, suite, seeds.length > 1 ? `${arch}-${seed}` : arch);
  const started = performance.now();
  const summary = await runTraining({
    data: files.train,
    spec: files.spec,
    arch,
    out,
    seed,
    ...(opts.idDropout ? { idDropout: opts.idDropout } : {}),
  });
  const seconds = (performance.now() - started) / 1000;
  // The int8 graph (half the edge's float32 latency, a quarter of the bytes) is the form quality
  // is judged on: its scores are the row's; the float32 graph's AUC stays beside them, so a
  // quantisation loss shows.
  await exportModelDir(out, { int8: true });
  const served = await openServedModel(out, true);
  const spec = await readSpecFile(files.spec);
  const test = simulated?.data ?? (await testData(suite, files));
  const { report, scores } = await evaluateWithScores(served, test, spec, { calibration: CALIBRATION });
  const float32 = await evaluateModel(await openServedModel(out), test, spec, {
    calibration: CALIBRATION,
  });
  const pick = (
    from: typeof report,
    metric: (m: (typeof report.tasks)[string]) => number | undefined,
  ): Record<string, number> =>
    Object.fromEntries(Object.entries(from.tasks).map(([t, m]) => [t, metric(m) ?? Number.NaN]));
  const float32Auc = pick(float32, (m) => m.auc);
  const regression = new Set(spec.tasks.filter((t) => t.type === "regression").map((t) => t.name));
  const aucs = pick(report, (m) => m.auc);
  const mse = Object.fromEntries(
    Object.entries(pick(report, (m) => m.mse)).filter(([t]) => regression.has(t)),
  );
  pairLabels(suite, test, spec);
  paired.addNetwork(suite, arch, scores);
  const truthEce = simulated && eceAgainstDrawn(simulated, scores);
  console.log(
    `${suite} ${arch} seed ${seed}: int8 ${fmtScores(aucs, mse)}, float32 ${fmtScores(float32Auc)} (${seconds.toFixed(0)} s, best epoch ${summary.bestEpoch})`,
  );
  return {
    suite,
    model: arch,
    seconds,
    auc: aucs,
    float32Auc,
    ...(regression.size > 0 ? { mse } : {}),
    ece: pick(report, (m) => m.ece),
    ...(truthEce ? { truthEce } : {}),
    bestEpoch: summary.bestEpoch,
    seed,
  };
}

/** A suite's test file, loaded once for every model it scores. */
function testData(suite: string, files: SuiteFiles): Promise<Dataset> {
  let data = testFiles.get(suite);
  if (!data) {
    data = readSpecFile(files.spec).then((spec) => loadDataset(files.test, spec));
    testFiles.set(suite, data);
  }
  return data;
}

/** The test file's binary labels, once per suite, for the paired comparisons. */
function pairLabels(suite: string, test: Dataset, spec: DatasetSpec): void {
  if (paired.hasLabels(suite)) return;
  const binary = new Set(spec.tasks.filter((t) => t.type !== "regression").map((t) => t.name));
  paired.setLabels(
    suite,
    Object.fromEntries(Object.entries(test.labels).filter(([task]) => binary.has(task))),
  );
}

/** The scikit-learn baselines and, unless --no-tuned, the tuned trees: each skipped with a note when python3 cannot run it. */
function baselines(suite: string, files: SuiteFiles): Row[] {
  const rows: Row[] = [];
  const out = sklearnBaselines(files, suite);
  if (out) {
    const row = (model: "logistic" | "gbdt"): Row => ({
      suite,
      model: `${model} (sklearn)`,
      seconds: out.seconds[model] ?? 0,
      auc: out[model],
      ...(Object.keys(out.mse[model]).length > 0 ? { mse: out.mse[model] } : {}),
    });
    console.log(
      `${suite} baselines: logistic ${fmtScores(out.logistic, out.mse.logistic)}; gbdt ${fmtScores(out.gbdt, out.mse.gbdt)}`,
    );
    rows.push(row("logistic"), row("gbdt"));
    paired.addBaseline(suite, LOGISTIC, out.predictions.logistic);
  }
  if (opts.tuned) rows.push(...tunedRows(suite, files));
  return rows;
}

/**
 * The tuned trees once per training seed (the seed draws their validation split and subsampling,
 * which moves a weak task's AUC as much as a network's seed does), then with several seeds their
 * mean; none, with the tool's note, when python3 cannot run them.
 */
function tunedRows(suite: string, files: SuiteFiles): Row[] {
  const rows: Row[] = [];
  for (const seed of seeds) {
    const tuned = tunedTrees(files, suite, seed);
    if (!tuned) return [];
    const chosen = Object.entries(tuned.chosen)
      .map(([t, c]) => `${t} lr ${c.learning_rate} leaves ${c.max_leaves} trees ${c.trees}`)
      .join(", ");
    console.log(
      `${suite} tuned trees seed ${seed}: ${fmtScores(tuned.auc, tuned.mse)} (${tuned.seconds.toFixed(0)} s; ${chosen})`,
    );
    rows.push({
      suite,
      model: TUNED_TREES,
      seconds: tuned.seconds,
      auc: tuned.auc,
      ...(Object.keys(tuned.mse).length > 0 ? { mse: tuned.mse } : {}),
      version: tuned.version,
      chosen: tuned.chosen,
      seed,
    });
    paired.addBaseline(suite, TUNED_TREES, tuned.predictions);
  }
  return withMeans(suite, rows);
}

/**
 * The naive CTCVR that ESMM is measured against: a click model on all exposures times a
 * conversion model trained on clicked exposures only (the sample-selection-biased CVR model),
 * scored on every test exposure against the purchase labels; once per training seed.
 */
async function naiveProducts(suite: string, files: SuiteFiles, test: SimulatedTest): Promise<Row[]> {
  const rows: Row[] = [];
  for (const seed of seeds) rows.push(await naiveProduct(suite, files, test, seed));
  return withMeans(suite, rows);
}

async function naiveProduct(
  suite: string,
  files: SuiteFiles,
  { data: test, drawn }: SimulatedTest,
  seed: number,
): Promise<Row> {
  const dir = join(WORK, suite);
  const raw = JSON.parse(await readFile(files.spec, "utf8")) as {
    tasks: { name: string; given?: string }[];
  };
  const only = async (task: string) => {
    const path = join(dir, `spec-${task}.json`);
    const tasks = raw.tasks.filter((t) => t.name === task).map(({ given: _, ...t }) => t);
    await writeFile(path, JSON.stringify({ ...raw, tasks }));
    return path;
  };
  const lines = (await readFile(files.train, "utf8")).trimEnd().split("\n");
  const clickColumn = lines[0]!.split(",").indexOf("click");
  const clicked = join(dir, "train-clicked.csv");
  const clickedRows = lines.slice(1).filter((l) => l.split(",")[clickColumn] === "1");
  await writeFile(clicked, `${[lines[0], ...clickedRows].join("\n")}\n`);
  const started = performance.now();
  const ctr = join(dir, `naive-ctr-${seed}`);
  const cvr = join(dir, `naive-cvr-${seed}`);
  await runTraining({ data: files.train, spec: await only("click"), arch: "single", out: ctr, seed });
  await runTraining({ data: clicked, spec: await only("purchase"), arch: "single", out: cvr, seed });
  await exportModelDir(ctr, { int8: true });
  await exportModelDir(cvr, { int8: true });
  const pClick = (await scoreRows(await openServedModel(ctr, true), test.rows)).click!;
  const pCvr = (await scoreRows(await openServedModel(cvr, true), test.rows)).purchase!;
  const ctcvr = pClick.map((p, i) => p * pCvr[i]!);
  const head = { name: "purchase", type: "binary" } as const;
  const m = evaluateTask(head, test.labels.purchase!, ctcvr, { calibration: CALIBRATION }).metrics;
  const truthEce = eceAgainstDrawn({ drawn }, { purchase: ctcvr }).purchase!;
  console.log(
    `${suite} naive ctr×cvr seed ${seed}: purchase auc ${m.auc?.toFixed(4)}, ece ${m.ece?.toFixed(5)}, truth ece ${truthEce.toFixed(5)}`,
  );
  return {
    suite,
    model: "naive ctr×cvr",
    seconds: (performance.now() - started) / 1000,
    auc: { purchase: m.auc ?? Number.NaN },
    ece: { purchase: m.ece ?? Number.NaN },
    truthEce: { purchase: truthEce },
    seed,
  };
}

/**
 * A simulator suite's test file, loaded once for every model of the suite, with the probability
 * each label was drawn from: the click probability at the row's position (p_click_observed, the
 * position-free p_click times the position effect) and, for purchase, that times
 * p_purchase_given_click. Not spec.truth's position-free probabilities: no model sees the
 * position, so against those every model would be off by the same position effect.
 */
interface SimulatedTest {
  data: Dataset;
  drawn: Record<string, Float32Array>;
}

async function simulatedTest(files: SuiteFiles): Promise<SimulatedTest> {
  const data = await loadDataset(files.test, await readSpecFile(files.spec));
  const first = data.rows[0]!;
  if (!("p_click_observed" in first) || !("p_purchase_given_click" in first))
    throw new Error(`${files.test}: no p_click_observed / p_purchase_given_click columns`);
  const click = Float32Array.from(data.rows, (r) => Number(r.p_click_observed));
  const purchase = Float32Array.from(data.rows, (r, i) => click[i]! * Number(r.p_purchase_given_click));
  return { data, drawn: { click, purchase } };
}

/** Noise-free calibration: ECE (CALIBRATION bins) of each predicted task against the drawn probabilities. */
function eceAgainstDrawn(
  { drawn }: Pick<SimulatedTest, "drawn">,
  predicted: Record<string, Float32Array>,
): Record<string, number> {
  return Object.fromEntries(
    Object.entries(predicted)
      .filter(([task]) => drawn[task])
      .map(([task, p]) => [task, expectedCalibrationError(calibrationCurve(drawn[task]!, p, CALIBRATION))]),
  );
}

/** The ceiling: AUC of the true probabilities on the test file. */
function oracle(suite: string, data: Dataset): Row {
  const aucs = Object.fromEntries(
    Object.entries(data.truth).map(([task, p]) => [task, auc(data.labels[task]!, p)]),
  );
  return { suite, model: "oracle (true p)", seconds: 0, auc: aucs };
}

function printTable(rows: Row[]): void {
  for (const suite of [...new Set(rows.map((r) => r.suite))]) {
    const inSuite = rows.filter((r) => r.suite === suite);
    const tasks = [...new Set(inSuite.flatMap((r) => [...Object.keys(r.auc), ...Object.keys(r.mse ?? {})]))];
    const withTruth = inSuite.some((r) => r.truthEce);
    const width = withTruth ? 27 : 18;
    console.log(
      `\n${suite}: test AUC, networks' from their int8 graphs (ECE${withTruth ? " / against the labels' true p" : ""}; ${CALIBRATION.bins} equal-mass bins); regression tasks: test MSE after the transform`,
    );
    const label = (r: Row) => (r.seed === undefined ? r.model : `${r.model} s${r.seed}`);
    const first = Math.max(22, ...inSuite.map((r) => label(r).length));
    console.log(
      ["model".padEnd(first), ...tasks.map((t) => t.padStart(width)), "seconds".padStart(9)].join(" "),
    );
    for (const r of inSuite)
      console.log(
        [
          label(r).padEnd(first),
          ...tasks.map((t) => {
            const mse = r.mse?.[t];
            if (mse !== undefined) return `mse ${mse.toFixed(4)}`.padStart(width);
            const errors = [r.ece?.[t], r.truthEce?.[t]].filter((e) => e !== undefined && !Number.isNaN(e));
            const auc = r.auc[t]?.toFixed(4) ?? "-";
            return (
              errors.length ? `${auc} (${errors.map((e) => e!.toFixed(5)).join(" / ")})` : auc
            ).padStart(width);
          }),
          r.seconds.toFixed(0).padStart(9),
        ].join(" "),
      );
  }
}

/** --cv: a model's AUC on one task, over the folds, and its differences from the baselines. */
interface CrossValidatedRow {
  model: string;
  task: string;
  auc: number;
  /**
   * Per baseline: the mean over folds of the model's AUC minus the baseline's, and its standard
   * error (corrected for the folds' overlapping training sets: ./cv-folds.ts).
   */
  versus: Record<string, { mean: number; error: number }>;
}

/** Each model's fold rows (its mean over seeds where there are several), paired by fold with the baselines'. */
function crossValidated(
  suites: readonly string[],
  rows: readonly Row[],
  testShare: number,
): CrossValidatedRow[] {
  const foldRow = (suite: string, model: string) =>
    rows.find((r) => r.suite === suite && r.model === `${model} (mean)`) ??
    rows.find((r) => r.suite === suite && r.model === model);
  const tasks = Object.keys(foldRow(suites[0]!, LOGISTIC)?.auc ?? foldRow(suites[0]!, archs[0]!)?.auc ?? {});
  const baselineNames = [LOGISTIC, TUNED_TREES].filter((b) => suites.every((s) => foldRow(s, b)));
  const out: CrossValidatedRow[] = [];
  for (const model of [...baselineNames, ...archs])
    for (const task of tasks) {
      const values = suites.map((s) => foldRow(s, model)?.auc[task] ?? Number.NaN);
      const versus: CrossValidatedRow["versus"] = {};
      if (!baselineNames.includes(model))
        for (const b of baselineNames)
          versus[b] = meanAndError(
            values.map((v, i) => v - (foldRow(suites[i]!, b)?.auc[task] ?? Number.NaN)),
            testShare,
          );
      out.push({ model, task, auc: meanAndError(values).mean, versus });
    }
  return out;
}

function printCrossValidated(
  name: string,
  { k, rounds }: { k: number; rounds: number },
  rows: readonly CrossValidatedRow[],
): void {
  const baselineNames = [LOGISTIC, TUNED_TREES].filter((b) => rows.some((r) => r.versus[b]));
  const signed = (v: number) => `${v < 0 ? "−" : "+"}${Math.abs(v).toFixed(4)}`;
  console.log(
    `\n${name}, ${rounds > 1 ? `${rounds} × ` : ""}${k}-fold cross-validation: mean AUC over the folds; minus each baseline's, paired by fold (± standard error, corrected for the folds' overlapping training sets)`,
  );
  console.log(
    `${"model · task".padEnd(40)} ${"AUC".padStart(7)}${baselineNames.map((b) => `   − ${b}`.padEnd(30)).join("")}`,
  );
  for (const r of rows) {
    const cells = baselineNames.map((b) => {
      const d = r.versus[b];
      return `   ${d ? `${signed(d.mean)} ± ${d.error.toFixed(4)}` : ""}`.padEnd(30);
    });
    console.log(`${`${r.model} · ${r.task}`.padEnd(40)} ${r.auc.toFixed(4).padStart(7)}${cells.join("")}`);
  }
  for (const b of baselineNames) {
    const cells = rows.filter((r) => r.versus[b]);
    const under = cells.filter((r) => r.versus[b]!.mean < 0);
    const clearly = under.filter((r) => r.versus[b]!.mean < -2 * r.versus[b]!.error);
    console.log(
      `against ${b}: ${cells.length - under.length} of ${cells.length} at or above; ${under.length - clearly.length} under by less than two standard errors; ${clearly.length} under by more`,
    );
  }
}
