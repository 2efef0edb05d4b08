/**
 * The Python reference models the benches compare against: test/tools/baselines.py (scikit-learn:
 * one-hot linear model, default gradient-boosted trees) and test/tools/tuned-trees.py (XGBoost with
 * native categoricals, early stopping and a small search). They run with Debian's /usr/bin/python3,
 * whose modules come from apt (python3-sklearn, python3-xgboost), not pip: PyPI need not be
 * reachable where the benches run, Debian's mirrors are.
 */
import { spawnSync } from "node:child_process";
import type { SuiteFiles } from "./suites.ts";

const PYTHON = "/usr/bin/python3";
/** The Debian package that provides each Python module a tool imports. */
const PACKAGES = { sklearn: "python3-sklearn", xgboost: "python3-xgboost" } as const;
type PythonModule = keyof typeof PACKAGES;

/** baselines.py's output: AUC per binary task and MSE per regression task of each model. */
export interface SklearnBaselines {
  logistic: Record<string, number>;
  gbdt: Record<string, number>;
  mse: { logistic: Record<string, number>; gbdt: Record<string, number> };
  seconds: Record<string, number>;
  /** Each binary task's test probabilities, row for row with the test file. */
  predictions: { logistic: Record<string, number[]>; gbdt: Record<string, number[]> };
}

/** The setting tuned-trees.py chose for a task on its validation split, and the trees it kept. */
export interface TunedSetting {
  learning_rate: number;
  max_leaves: number;
  trees: number;
}

export interface TunedTrees {
  /** Test AUC per binary task. */
  auc: Record<string, number>;
  /** Test MSE per regression task, after the task's transform, over the labelled rows. */
  mse: Record<string, number>;
  /** The whole search (every setting of every task) and the test predictions, reading excluded. */
  seconds: number;
  /** "xgboost 1.7.4" */
  version: string;
  chosen: Record<string, TunedSetting>;
  /** Each binary task's test probabilities, row for row with the test file. */
  predictions: Record<string, number[]>;
}

/**
 * scikit-learn's baselines on a train/test pair, or undefined (with one line saying why, prefixed
 * by `name`) when python3 cannot run them.
 */
export function sklearnBaselines(files: SuiteFiles, name: string): SklearnBaselines | undefined {
  const missing = pythonModules(["sklearn"], "scikit-learn baselines");
  if (missing) {
    console.log(`${name}: no scikit-learn baselines (${missing})`);
    return undefined;
  }
  return runTool<SklearnBaselines>("test/tools/baselines.py", files, name, "scikit-learn baselines");
}

let announced = false;

/**
 * The tuned XGBoost anchor on a train/test pair, or undefined (with one line saying why, prefixed
 * by `name`) when python3 cannot run it. Prints the xgboost version the first time it runs.
 * `seed` draws its validation split and seeds its subsampling (default 0).
 */
export function tunedTrees(files: SuiteFiles, name = files.train, seed = 0): TunedTrees | undefined {
  const missing = pythonModules(["xgboost", "sklearn"], "tuned trees");
  if (missing) {
    console.log(`${name}: no tuned trees (${missing})`);
    return undefined;
  }
  const out = runTool<{
    tuned: Record<string, number>;
    mse: { tuned: Record<string, number> };
    seconds: { tuned: number };
    version: string;
    chosen: Record<string, TunedSetting>;
    predictions: { tuned: Record<string, number[]> };
  }>("test/tools/tuned-trees.py", files, name, "tuned trees", ["--seed", String(seed)]);
  if (!out) return undefined;
  if (!announced) console.log(`tuned trees: ${out.version}`);
  announced = true;
  return {
    auc: out.tuned,
    mse: out.mse.tuned,
    seconds: out.seconds.tuned,
    version: out.version,
    chosen: out.chosen,
    predictions: out.predictions.tuned,
  };
}

function runTool<T>(
  script: string,
  files: SuiteFiles,
  name: string,
  what: string,
  extra: readonly string[] = [],
): T | undefined {
  const run = spawnSync(
    PYTHON,
    [script, "--train", files.train, "--test", files.test, "--spec", files.spec, ...extra],
    // The test probabilities make the output megabytes on a big test file.
    { encoding: "utf8", maxBuffer: 1 << 30 },
  );
  if (run.status !== 0) {
    console.log(`${name}: no ${what} (${(run.stderr || run.error?.message || "").trim().split("\n").pop()})`);
    return undefined;
  }
  return JSON.parse(run.stdout) as T;
}

/** Per set of modules: undefined once python3 imports them, else why not. Asked once per process. */
const checked = new Map<string, string | undefined>();
let updated = false;

/**
 * Undefined when /usr/bin/python3 imports every module of `modules`; else, running as root where
 * apt-get exists, installs their Debian packages (with one `apt-get update` and a retry when the
 * install fails: a fresh container's package lists are empty or stale), saying so in one line.
 * When they still do not import, returns what is missing and the command that installs it.
 */
export function pythonModules(modules: readonly PythonModule[], purpose: string): string | undefined {
  const key = modules.join(",");
  if (checked.has(key)) return checked.get(key);
  const imports = () =>
    spawnSync(PYTHON, ["-c", `import ${modules.join(", ")}`], { stdio: "ignore" }).status === 0;
  const packages = modules.map((m) => PACKAGES[m]);
  const install = `apt-get install -y ${packages.join(" ")}`;
  let ok = imports();
  const root = process.getuid?.() === 0;
  const apt = spawnSync("apt-get", ["--version"], { stdio: "ignore" }).status === 0;
  if (!ok && root && apt) {
    console.log(`${purpose}: ${PYTHON} lacks ${modules.join(" or ")}; running ${install}`);
    ok = aptGet(["install", "-y", ...packages]) && imports();
    if (!ok && !updated) {
      updated = true;
      ok = aptGet(["update"]) && aptGet(["install", "-y", ...packages]) && imports();
    }
  }
  const missing = ok
    ? undefined
    : `${PYTHON} lacks ${modules.join(" or ")}; ${apt ? `run: ${root ? "" : "sudo "}${install}` : `install ${packages.join(" ")} or their equivalents`}`;
  checked.set(key, missing);
  return missing;
}

function aptGet(args: string[]): boolean {
  const run = spawnSync("apt-get", args, {
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    // apt's progress output can run past spawnSync's 1 MiB default buffer, which would kill it.
    stdio: ["ignore", "ignore", "ignore"],
  });
  return run.status === 0;
}
