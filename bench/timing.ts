/** Command-line flags, latency summaries and host facts the benchmarks share. */
import { cpus, loadavg } from "node:os";

/** The integer after `flag` in argv (>= min), or `fallback` when the flag is absent. */
export function intFlag(argv: readonly string[], flag: string, fallback: number, min: number): number {
  const at = argv.indexOf(flag);
  if (at < 0) return fallback;
  const value = Number(argv[at + 1]);
  if (!Number.isInteger(value) || value < min)
    throw new Error(`${flag}: expected an integer >= ${min}, got "${argv[at + 1]}"`);
  return value;
}

/** The word after `flag` in argv, or `fallback` when the flag is absent. */
export function stringFlag(argv: readonly string[], flag: string, fallback: string): string {
  const at = argv.indexOf(flag);
  return at < 0 ? fallback : (argv[at + 1] ?? "");
}

/** stringFlag limited to `choices` (the first is the fallback). */
export function choiceFlag<const C extends string>(
  argv: readonly string[],
  flag: string,
  choices: readonly [C, ...C[]],
): C {
  const value = stringFlag(argv, flag, choices[0]);
  if (!(choices as readonly string[]).includes(value))
    throw new Error(`${flag}: expected ${choices.slice(0, -1).join(", ")} or ${choices[choices.length - 1]}`);
  return value as C;
}

/** The q-quantile of `times` (nearest rank: the ⌈q·n⌉-th smallest). */
export function quantile(times: readonly number[], q: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}

export interface LatencyStats {
  p50: number;
  p99: number;
  mean: number;
}

/** p50, p99 and mean in milliseconds, rounded to the microsecond. */
export function latencyStats(times: readonly number[]): LatencyStats {
  const round = (x: number) => Math.round(x * 1000) / 1000;
  return {
    p50: round(quantile(times, 0.5)),
    p99: round(quantile(times, 0.99)),
    mean: round(times.reduce((a, b) => a + b, 0) / times.length),
  };
}

/** `--runs N` (default 200, 20 with `--quick`) and `--quick`, as the inference benchmarks take them. */
export function runsArgs(argv: readonly string[]): { runs: number; quick: boolean } {
  const quick = argv.includes("--quick");
  return { runs: intFlag(argv, "--runs", quick ? 20 : 200, 5), quick };
}

/** The host a benchmark ran on, for its JSON report: load average, cores, CPU model, Node. */
export function machineInfo(): { loadAverage: number[]; cpus: number; cpu: string; node: string } {
  return {
    loadAverage: loadavg(),
    cpus: cpus().length,
    cpu: cpus()[0]?.model ?? "unknown",
    node: process.version,
  };
}
