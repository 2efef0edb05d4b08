/**
 * bench:quality's paired comparisons: each architecture's mean test AUC over its seeds minus a
 * baseline's (logistic regression; tuned trees, over the same seeds), with a 95 % interval from a paired bootstrap over
 * the test rows (trainer/metrics/paired-auc.ts). A mean over three seeds a few thousandths under a
 * baseline on a few thousand test rows is a tie, not a loss, and the interval says which it is.
 *
 * The baselines' per-row probabilities come from the Python tools (in the test file's order); a
 * network's from its int8 graph on the same file. A task is paired only where both cover every row.
 */
import { type AucDifference, pairedAucDifference } from "../trainer/metrics/paired-auc.ts";

/** Per baseline model, per task: the architecture's mean AUC minus the baseline's. */
export type Versus = Record<string, Record<string, AucDifference>>;

/** The model names the table gives the two baselines an architecture is paired with. */
export const LOGISTIC = "logistic (sklearn)";
export const TUNED_TREES = "tuned trees (xgboost)";
const PAIRED_BASELINES = [LOGISTIC, TUNED_TREES] as const;

const RESAMPLES = 1000;

export class PairedScores {
  private readonly labels = new Map<string, Record<string, ArrayLike<number>>>();
  private readonly baselines = new Map<string, Record<string, ArrayLike<number>[]>>();
  private readonly networks = new Map<string, Record<string, ArrayLike<number>[]>>();

  /** A suite's test labels per binary task, in the test file's order. */
  setLabels(suite: string, labels: Record<string, ArrayLike<number>>): void {
    if (!this.labels.has(suite)) this.labels.set(suite, labels);
  }

  hasLabels(suite: string): boolean {
    return this.labels.has(suite);
  }

  /** A baseline's test probabilities per task (one call per seed of a seeded baseline). */
  addBaseline(suite: string, model: string, predictions: Record<string, ArrayLike<number>>): void {
    append(this.baselines, `${suite}\u0000${model}`, predictions);
  }

  /** One trained network's test scores per task (one call per seed). */
  addNetwork(suite: string, arch: string, scores: Record<string, ArrayLike<number>>): void {
    append(this.networks, `${suite}\u0000${arch}`, scores);
  }

  /** The architecture against every paired baseline present, per task both cover row for row. */
  versus(suite: string, arch: string): Versus | undefined {
    const labels = this.labels.get(suite);
    const runs = this.networks.get(`${suite}\u0000${arch}`);
    if (!labels || !runs) return undefined;
    const out: Versus = {};
    for (const model of PAIRED_BASELINES) {
      const baseline = this.baselines.get(`${suite}\u0000${model}`);
      if (!baseline) continue;
      const tasks: Record<string, AucDifference> = {};
      for (const [task, y] of Object.entries(labels)) {
        const b = baseline[task];
        const a = runs[task];
        if (!b || !a) continue;
        const lengths = [...b, ...a].map((s) => s.length);
        if (lengths.some((n) => n !== y.length)) {
          // Rows one side skipped (a bad row, an unlabelled one) would pair the wrong rows.
          console.log(
            `${suite} ${arch} · ${task}: not paired with ${model}: ${lengths.join(" / ")} scores for ${y.length} test labels`,
          );
          continue;
        }
        tasks[task] = pairedAucDifference(y, a, b, { resamples: RESAMPLES });
      }
      if (Object.keys(tasks).length > 0) out[model] = tasks;
    }
    return Object.keys(out).length > 0 ? out : undefined;
  }
}

/** Adds one run's scores per task to the runs kept under `key`. */
function append(
  runs: Map<string, Record<string, ArrayLike<number>[]>>,
  key: string,
  scores: Record<string, ArrayLike<number>>,
): void {
  const kept = runs.get(key) ?? {};
  for (const [task, s] of Object.entries(scores)) kept[task] = [...(kept[task] ?? []), s];
  runs.set(key, kept);
}

/** "+0.0012 [−0.0031, +0.0054]" */
export function formatDifference(d: AucDifference): string {
  const signed = (x: number) => `${x >= 0 ? "+" : "−"}${Math.abs(x).toFixed(4)}`;
  return `${signed(d.difference)} [${signed(d.low)}, ${signed(d.high)}]`;
}

/** One table per suite: architecture · task, then its difference from each paired baseline. */
export function printVersus(rows: readonly { suite: string; model: string; versus?: Versus }[]): void {
  for (const suite of [...new Set(rows.map((r) => r.suite))]) {
    const paired = rows.filter((r) => r.suite === suite && r.versus);
    if (paired.length === 0) continue;
    const models = PAIRED_BASELINES.filter((m) => paired.some((r) => r.versus![m]));
    console.log(
      `\n${suite}: mean AUC minus the baseline's, 95% interval (paired bootstrap over the test rows, ${RESAMPLES} resamples)`,
    );
    console.log(["model · task".padEnd(34), ...models.map((m) => `− ${m}`.padStart(34))].join(" "));
    for (const r of paired) {
      const tasks = [...new Set(models.flatMap((m) => Object.keys(r.versus![m] ?? {})))];
      for (const task of tasks)
        console.log(
          [
            `${r.model} · ${task}`.padEnd(34),
            ...models.map((m) => {
              const d = r.versus![m]?.[task];
              return (d ? formatDifference(d) : "-").padStart(34);
            }),
          ].join(" "),
        );
    }
    for (const m of models)
      console.log(
        verdict(
          m,
          paired.flatMap((r) => Object.values(r.versus![m] ?? {})),
        ),
      );
  }
}

/**
 * One line per baseline: how many architecture · task cells stand at or above it, how many under
 * it inside their interval (a tie the test file cannot split), and how many under it outside.
 */
export function verdict(model: string, cells: readonly AucDifference[]): string {
  const above = cells.filter((d) => d.difference >= 0).length;
  const outside = cells.filter((d) => d.high < 0).length;
  return `against ${model}: ${above} of ${cells.length} at or above; ${cells.length - above - outside} under inside the interval; ${outside} under outside it`;
}
