/**
 * A tabular world where gradient-boosted trees beat a linear model by far, for checking the
 * trainer's defaults on the shape networks are known to find hardest on tabular data (irregular
 * functions of skewed numbers, uninformative columns), which neither the recommendation
 * simulator nor the census-like set produce: there trees and logistic regression are level.
 *
 * - Each informative number acts through a step function: six thresholds at random quantiles of
 *   its own distribution, a random level between them. The numbers are log-normal, exponential,
 *   uniform, integer counts, zero-inflated heavy-tailed, normal, uniform integers and U-shaped.
 * - Two threshold interactions (n5 > 0.5 and n6 < 30; n1 > 1.5 and a low c1), and a categorical
 *   that flips the sign of a number's effect (c2).
 * - Categoricals of 3 to 1,000 values with Zipf frequencies and a random effect per value.
 * - Eight numbers (scaled by 1, 10 or 100) and three categoricals carry nothing; 1% of number
 *   cells are empty.
 * - Two binary tasks (~14% and ~27% positive) share n0's and n4's effects and nothing else.
 *
 * The world (thresholds, levels, effects) comes from `worldSeed`, rows from `seed`, so train and
 * test files share one world. The true probabilities are written beside the labels (`p_a`, `p_b`).
 */
import { createRng, cumulative, type Rng, sampleCumulative } from "../core/rng.ts";
import { writeTabular } from "./write-tabular.ts";

export interface ThresholdWorldOptions {
  rows: number;
  seed: number;
  worldSeed: number;
}

const INFORMATIVE = 8;
const NOISE_NUMBERS = 8;
/** Values per categorical; the last three carry no signal. */
const CARDINALITY = [3, 8, 30, 200, 1000, 12, 50, 5] as const;
const STEPS = 6;
const MISSING_RATE = 0.01;

const NUMBER_NAMES = Array.from({ length: INFORMATIVE + NOISE_NUMBERS }, (_, j) => `n${j}`);
const CATEGORY_NAMES = CARDINALITY.map((_, j) => `c${j}`);
export const THRESHOLD_COLUMNS = [...NUMBER_NAMES, ...CATEGORY_NAMES, "label_a", "label_b", "p_a", "p_b"];

interface Person {
  numbers: number[];
  categories: number[];
}

interface Steps {
  thresholds: number[];
  levels: number[];
}

interface World {
  noiseScale: number[];
  zipf: Float64Array[];
  /** steps[task][j] for the informative numbers. */
  steps: [Steps[], Steps[]];
  /** effects[task][j][value] for the first five categoricals. */
  effects: [Float64Array[], Float64Array[]];
}

/** One draw of the informative numbers, in order n0..n7. */
function informative(rng: Rng): number[] {
  const exponential = () => -Math.log(1 - rng.uniform());
  return [
    Math.exp(3 + rng.normal()),
    exponential(),
    2 * rng.uniform() - 1,
    Math.round(10 * (exponential() + exponential())),
    rng.uniform() < 0.6 ? 0 : Math.exp(5 + 2 * rng.normal()),
    rng.normal(),
    rng.int(100),
    Math.sin((Math.PI * rng.uniform()) / 2) ** 2,
  ];
}

function createWorld(seed: number): World {
  const rng = createRng(seed, 21);
  const noiseScale = Array.from({ length: NOISE_NUMBERS }, () => rng.pick([1, 10, 100]));
  const zipf = CARDINALITY.map((n) => cumulative(Array.from({ length: n }, (_, k) => 1 / (k + 1) ** 0.8)));
  // Thresholds sit at quantiles of each number's own distribution, read off a reference sample.
  const reference = Array.from({ length: 20_000 }, () => informative(rng));
  const sorted = Array.from({ length: INFORMATIVE }, (_, j) =>
    reference.map((r) => r[j]!).sort((a, b) => a - b),
  );
  const stepsFor = (): Steps[] =>
    sorted.map((values) => ({
      thresholds: Array.from({ length: STEPS }, () => 0.05 + 0.9 * rng.uniform())
        .sort((a, b) => a - b)
        .map((q) => values[Math.floor(q * values.length)]!),
      levels: Array.from({ length: STEPS + 1 }, () => rng.normal()),
    }));
  const effectsFor = (): Float64Array[] =>
    CARDINALITY.slice(0, 5).map((n) => Float64Array.from({ length: n }, () => 0.8 * rng.normal()));
  return { noiseScale, zipf, steps: [stepsFor(), stepsFor()], effects: [effectsFor(), effectsFor()] };
}

function step(s: Steps, x: number): number {
  let i = 0;
  while (i < s.thresholds.length && x > s.thresholds[i]!) i++;
  return s.levels[i]!;
}

function draw(rng: Rng, world: World): Person {
  return {
    numbers: [...informative(rng), ...world.noiseScale.map((s) => s * rng.normal())],
    categories: world.zipf.map((cum) => sampleCumulative(rng, cum)),
  };
}

/** The two tasks' true logits. */
function logits(p: Person, world: World): [number, number] {
  const n = p.numbers;
  const c = p.categories;
  const [sa, sb] = world.steps;
  const [ea, eb] = world.effects;
  const f = (s: Steps[], j: number) => step(s[j]!, n[j]!);
  const e = (effects: Float64Array[], j: number) => effects[j]![c[j]!]!;
  const a =
    -2.2 +
    0.6 * f(sa, 0) +
    0.5 * f(sa, 1) +
    0.4 * f(sa, 2) +
    0.5 * f(sa, 3) +
    0.6 * f(sa, 4) +
    (n[5]! > 0.5 && n[6]! < 30 ? 1.2 : 0) -
    (n[7]! > 0.8 && c[0] === 1 ? 1 : 0) +
    e(ea, 0) +
    e(ea, 1) +
    e(ea, 3) +
    0.8 * (c[2]! % 3 === 0 ? 1 : -1) * f(sa, 5);
  const b =
    -0.6 +
    0.6 * f(sa, 0) +
    0.6 * f(sa, 4) +
    0.5 * f(sb, 6) +
    0.5 * f(sb, 7) +
    0.5 * f(sb, 2) +
    e(eb, 1) +
    e(eb, 2) +
    0.7 * e(eb, 4) +
    (n[1]! > 1.5 && c[1]! < 3 ? 1 : 0);
  return [a, b];
}

/** Rows as CSV cells, in THRESHOLD_COLUMNS order. */
export function generateThresholdWorld(options: ThresholdWorldOptions): string[][] {
  const world = createWorld(options.worldSeed);
  const rng = createRng(options.seed, 22);
  return Array.from({ length: options.rows }, () => {
    const person = draw(rng, world);
    const [pa, pb] = logits(person, world).map(sigmoid) as [number, number];
    const label = (p: number) => (rng.uniform() < p ? "1" : "0");
    return [
      ...person.numbers.map((x) => (rng.uniform() < MISSING_RATE ? "" : String(Number(x.toPrecision(5))))),
      ...person.categories.map((k, j) => `${CATEGORY_NAMES[j]}_${k}`),
      label(pa),
      label(pb),
      pa.toFixed(5),
      pb.toFixed(5),
    ];
  });
}

/** The dataset spec for the generated CSV (docs/dataset-spec.md). */
export function thresholdWorldSpec(): Record<string, unknown> {
  return {
    format: "csv",
    header: true,
    missing: [""],
    features: [
      ...NUMBER_NAMES.map((name) => ({ name, type: "numeric", side: "user" })),
      ...CATEGORY_NAMES.map((name) => ({ name, type: "categorical", side: "user" })),
    ],
    tasks: [
      { name: "a", type: "binary", column: "label_a", positive: ["1"] },
      { name: "b", type: "binary", column: "label_b", positive: ["1"] },
    ],
    truth: { a: "p_a", b: "p_b" },
  };
}

/** Writes DIR/<name>.csv for each part and DIR/spec.json; returns the file paths. */
export function writeThresholdWorld(
  dir: string,
  parts: Record<string, Omit<ThresholdWorldOptions, "worldSeed">>,
  worldSeed = 7,
): Record<string, string> {
  const generate = (o: Omit<ThresholdWorldOptions, "worldSeed">) =>
    generateThresholdWorld({ ...o, worldSeed });
  return writeTabular(dir, THRESHOLD_COLUMNS, parts, generate, thresholdWorldSpec());
}

function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x));
}
