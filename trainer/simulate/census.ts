/**
 * A census-like tabular data set (shaped after UCI Census-Income, the MMoE paper's benchmark),
 * for checking the trainer against logistic regression and gradient-boosted trees on data the
 * recommendation simulator does not produce: one row per person, no groups, ~30 mixed columns
 * (zero-inflated and heavy-tailed numerics, categoricals from 2 to 50 values, some "?" cells),
 * and two binary tasks whose labels are text ("50000+." and "Never married").
 *
 * The truth has what makes trees beat a linear model: thresholds on numeric columns (capital
 * gains above ~7,000, weeks worked), an age curve that rises and falls, and interactions
 * (occupation × education). The world (per-category effects) comes from `worldSeed`, rows from
 * `seed`, so train and test files share one world.
 */
import { createRng, type Rng } from "../core/rng.ts";
import { writeTabular } from "./write-tabular.ts";

export interface CensusOptions {
  rows: number;
  seed: number;
  worldSeed: number;
  /**
   * Extra categorical columns `recode_0`, `recode_1`, ... (default 0): each a coarse recode of one
   * of the person's categorical columns with 15% of its cells replaced by noise, as the UCI set's
   * detailed/major recodes repeat what other columns say. With 13 of them a row has 40 feature
   * columns (8 numeric, 32 categorical), the UCI set's shape: the census-sized run of
   * `npm run bench:train`.
   */
  recodes?: number;
}

interface Categorical {
  name: string;
  values: number;
}

/** Categorical columns that carry no signal beyond what they share with others. */
const NOISE_CATEGORICALS: readonly Categorical[] = [
  { name: "state", values: 51 },
  { name: "region", values: 6 },
  { name: "hispanic_origin", values: 10 },
  { name: "migration_msa", values: 10 },
  { name: "migration_reg", values: 9 },
  { name: "veteran_benefits", values: 3 },
  { name: "union_member", values: 3 },
];

interface World {
  occupation: Float64Array; // income effect per occupation
  industry: Float64Array;
  occupationSkill: Float64Array; // how much education pays in each occupation
  worker: Float64Array;
}

function createWorld(seed: number): World {
  const rng = createRng(seed, 11);
  const effects = (n: number, scale: number) => Float64Array.from({ length: n }, () => scale * rng.normal());
  return {
    occupation: effects(47, 0.9),
    industry: effects(52, 0.5),
    occupationSkill: Float64Array.from({ length: 47 }, () => Math.max(0, rng.normal())),
    worker: effects(9, 0.6),
  };
}

export const CENSUS_COLUMNS = [
  "age",
  "sex",
  "race",
  "education",
  "class_of_worker",
  "occupation",
  "industry",
  "weeks_worked",
  "wage_per_hour",
  "capital_gains",
  "capital_losses",
  "dividends",
  "num_persons_worked",
  "household_summary",
  "tax_filer_status",
  "citizenship",
  "country_of_birth",
  "full_or_part_time",
  "year",
  "instance_weight",
  ...NOISE_CATEGORICALS.map((c) => c.name),
  "income",
  "marital_status",
] as const;

const EDUCATION = 17;
const MARITAL = ["Never married", "Married-civilian spouse present", "Divorced", "Widowed", "Separated"];
const HOUSEHOLD = [
  "Child under 18",
  "Householder",
  "Spouse of householder",
  "Child 18+",
  "Other relative",
  "Nonrelative",
  "Group quarters",
  "Other",
];
const TAX_FILER = [
  "Nonfiler",
  "Joint both under 65",
  "Joint one under 65",
  "Single",
  "Head of household",
  "Joint both 65+",
];

/** One person as CSV cells, in CENSUS_COLUMNS order. */
function person(rng: Rng, world: World): string[] {
  const child = rng.uniform() < 0.25;
  const age = child ? Math.floor(rng.uniform() * 18) : 18 + Math.floor(72 * rng.uniform() ** 1.4);
  const male = rng.uniform() < 0.48;
  const ses = rng.normal(); // latent socio-economic status, seen only through other columns
  const edu = child
    ? Math.min(Math.floor(age / 2), 5)
    : clampInt(7 + 3 * ses + 2 * rng.normal() - (age > 60 ? 1.5 : 0), 0, EDUCATION - 1);
  const working = !child && age < 70 && rng.uniform() < 0.78 + 0.05 * ses;
  const occupation = working ? clampInt(23 + (7 * (edu - 8)) / 4 + 10 * rng.normal(), 0, 46) : -1;
  const industry = working ? (occupation * 7 + Math.floor(rng.uniform() * 9)) % 52 : -1;
  const worker = working ? Math.floor(rng.uniform() * 8) : 8;
  const weeks = !working ? 0 : rng.uniform() < 0.65 ? 52 : 1 + Math.floor(rng.uniform() * 51);
  const wage = working && rng.uniform() < 0.07 ? Math.round(400 + 1500 * rng.uniform() ** 2) : 0;
  const gainsDraw = rng.uniform();
  const gains =
    child || gainsDraw > 0.05
      ? 0
      : gainsDraw < 0.003
        ? 99999
        : Math.round(Math.exp(6 + 1.8 * rng.normal() + 0.4 * ses));
  const losses = child || rng.uniform() > 0.025 ? 0 : Math.round(1200 + 1000 * rng.uniform());
  const dividends =
    child || rng.uniform() > 0.12 + 0.05 * ses
      ? 0
      : Math.round(Math.exp(4.5 + 1.6 * rng.normal() + 0.6 * ses));

  // Marriage: mostly age, a little status.
  const marriedLogit = child
    ? -12
    : -4.2 + 0.22 * Math.min(age, 40) - 0.002 * (age - 40) ** 2 * (age > 40 ? 1 : 0) + 0.3 * ses;
  const neverMarried = rng.uniform() >= sigmoid(marriedLogit);
  const marital = neverMarried
    ? 0
    : pickWeighted(rng, [0, 6, 1.2 + age / 60, age > 55 ? (age - 50) / 10 : 0.05, 0.4]);
  const household = child
    ? 0
    : marital === 1
      ? rng.uniform() < 0.5
        ? 1
        : 2
      : neverMarried && age < 30 && rng.uniform() < 0.55
        ? 3
        : pickWeighted(rng, [0, 4, 0, 1, 1, 1, 0.2, 0.3]);
  const taxFiler =
    child || (!working && rng.uniform() < 0.6)
      ? 0
      : marital === 1
        ? age >= 65
          ? 5
          : rng.uniform() < 0.85
            ? 1
            : 2
        : rng.uniform() < 0.75
          ? 3
          : 4;

  const ageCurve = age < 18 ? -6 : -0.0016 * (age - 50) ** 2 + (age > 70 ? -0.5 : 0);
  const skill = occupation >= 0 ? world.occupationSkill[occupation]! : 0;
  const incomeLogit =
    -4.4 +
    ageCurve +
    0.22 * (edu - 8) +
    0.12 * skill * Math.max(0, edu - 9) +
    (occupation >= 0 ? world.occupation[occupation]! + world.industry[industry]! : -1.5) +
    world.worker[worker]! +
    (weeks >= 50 ? 1.3 : weeks === 0 ? -1.5 : 0.002 * weeks * 10) +
    (gains > 7000 ? 3.6 : gains > 0 ? 0.4 : 0) +
    (losses >= 1800 && losses <= 2100 ? 1.6 : 0) +
    0.22 * Math.log1p(dividends) +
    (male ? 0.6 : 0) +
    (marital === 1 ? 0.7 : 0) +
    0.5 * ses;
  const income = rng.uniform() < sigmoid(incomeLogit);

  const born = rng.uniform() < 0.88 ? 0 : 1 + Math.floor(rng.uniform() * 42);
  const cells: (string | number)[] = [
    age,
    male ? "Male" : "Female",
    `race_${pickWeighted(rng, [8, 1.2, 0.4, 0.3, 0.2])}`,
    child ? "Children" : `edu_${edu}`,
    working ? `worker_${worker}` : "Not in universe",
    occupation >= 0 ? `occ_${occupation}` : "Not in universe",
    industry >= 0 ? `ind_${industry}` : "Not in universe",
    weeks,
    wage,
    gains,
    losses,
    dividends,
    working ? Math.floor(rng.uniform() * 7) : 0,
    HOUSEHOLD[household]!,
    TAX_FILER[taxFiler]!,
    born === 0 ? "Native" : rng.uniform() < 0.4 ? "Naturalized" : "Foreign born",
    born === 0 ? "United-States" : `country_${born}`,
    !working ? "Not in labor force" : weeks === 52 ? "Full-time" : `pt_${Math.floor(rng.uniform() * 5)}`,
    rng.uniform() < 0.5 ? 94 : 95,
    (500 + 3000 * rng.uniform()).toFixed(2),
    ...NOISE_CATEGORICALS.map((c) =>
      c.name.startsWith("migration") && rng.uniform() < 0.3
        ? "?"
        : `${c.name}_${Math.floor(rng.uniform() ** 2 * c.values)}`,
    ),
    income ? "50000+." : "- 50000.",
    MARITAL[marital]!,
  ];
  return cells.map(String);
}

export function generateCensus(options: CensusOptions): string[][] {
  const world = createWorld(options.worldSeed);
  const rng = createRng(options.seed, 12);
  const recodes = options.recodes ?? 0;
  return Array.from({ length: options.rows }, () => {
    const cells = person(rng, world);
    if (recodes === 0) return cells;
    const labels = cells.splice(cells.length - 2, 2);
    return [...cells, ...recodeCells(rng, cells, recodes), ...labels];
  });
}

/** The person's categorical cells that recodes read (column indices in CENSUS_COLUMNS). */
const RECODED = [
  "education",
  "class_of_worker",
  "occupation",
  "industry",
  "household_summary",
  "country_of_birth",
].map((name) => CENSUS_COLUMNS.indexOf(name as (typeof CENSUS_COLUMNS)[number]));

/** Recode k of a person: a hash of one categorical cell folded to 3..14 values, or noise. */
function recodeCells(rng: Rng, cells: readonly string[], count: number): string[] {
  return Array.from({ length: count }, (_, k) => {
    const values = 3 + ((k * 5) % 12);
    if (rng.uniform() < 0.15) return `r${k}_${Math.floor(rng.uniform() * values)}`;
    const cell = cells[RECODED[k % RECODED.length]!]!;
    let h = 17 + k;
    for (let i = 0; i < cell.length; i++) h = (Math.imul(h, 31) + cell.charCodeAt(i)) >>> 0;
    return `r${k}_${h % values}`;
  });
}

/** The columns of a generated file with `recodes` extra columns. */
export function censusColumns(recodes = 0): string[] {
  const features = CENSUS_COLUMNS.slice(0, -2);
  const extra = Array.from({ length: recodes }, (_, k) => `recode_${k}`);
  return [...features, ...extra, "income", "marital_status"];
}

/** The dataset spec for the generated CSV (docs/dataset-spec.md); every feature is user side. */
export function censusSpec(recodes = 0): Record<string, unknown> {
  const numeric = new Set([
    "age",
    "weeks_worked",
    "wage_per_hour",
    "capital_gains",
    "capital_losses",
    "dividends",
    "num_persons_worked",
    "instance_weight",
  ]);
  const features = censusColumns(recodes)
    .filter((c) => c !== "income" && c !== "marital_status")
    .map((name) => ({
      name,
      type: numeric.has(name) ? "numeric" : "categorical",
      side: "user",
    }));
  return {
    format: "csv",
    header: true,
    missing: ["?", ""],
    features,
    tasks: [
      { name: "income", type: "binary", column: "income", positive: ["50000+."] },
      { name: "never_married", type: "binary", column: "marital_status", positive: ["Never married"] },
    ],
  };
}

/** Writes DIR/<name>.csv for each part and DIR/spec.json; returns the file paths. */
export function writeCensus(
  dir: string,
  parts: Record<string, Omit<CensusOptions, "worldSeed" | "recodes">>,
  worldSeed = 7,
  recodes = 0,
): Record<string, string> {
  return writeTabular(
    dir,
    censusColumns(recodes),
    parts,
    (o) => generateCensus({ ...o, worldSeed, recodes }),
    censusSpec(recodes),
  );
}

function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x));
}

function clampInt(x: number, lo: number, hi: number): number {
  return Math.max(lo, Math.min(hi, Math.round(x)));
}

function pickWeighted(rng: Rng, weights: readonly number[]): number {
  const total = weights.reduce((a, b) => a + b, 0);
  let r = rng.uniform() * total;
  for (let i = 0; i < weights.length; i++) {
    r -= weights[i]!;
    if (r < 0) return i;
  }
  return weights.length - 1;
}
