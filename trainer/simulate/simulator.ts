/**
 * Deterministic recommendation-log simulator with ground truth.
 *
 * World: users and items with latent vectors; requests show a list of popularity-sampled items in a
 * random order; clicks follow a position-free relevance probability times a position examination
 * probability; purchases happen only after a click with their own (partly different) relevance.
 * The true probabilities are written next to the labels so quality tests can compare with an oracle.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createRng, cumulative, type Rng, sampleCumulative, shuffle } from "../core/rng.ts";

export interface SimulateOptions {
  seed: number;
  users: number;
  items: number;
  requests: number;
  listSize: number;
  latentDim: number;
  /**
   * Logit of a purchase after a click for an average user, item and price: -2.1 gives ~20% of
   * clicks (3% of exposures); -3.6 gives ~6% (0.8% of exposures, as sparse as real shop logs).
   */
  purchaseBias: number;
  /**
   * List dwell (log1p seconds on the item's page, given a click) as a third task in spec.json.
   * The column is written either way; the quality bench leaves the task out, so that its click
   * and purchase figures come from the same two-task spec as the tables they are compared with.
   */
  dwellTask: boolean;
}

export const DEFAULT_SIMULATE_OPTIONS: Readonly<SimulateOptions> = Object.freeze({
  seed: 42,
  users: 2000,
  items: 1000,
  requests: 4000,
  listSize: 10,
  latentDim: 8,
  purchaseBias: -2.1,
  dwellTask: true,
});

export type SimSide = "user" | "context" | "item";

export interface SimSpecJson {
  format: "csv";
  delimiter: ",";
  header: true;
  missing: string[];
  group: string;
  features: { name: string; type: "categorical" | "numeric"; side: SimSide }[];
  tasks: (
    | { name: string; type: "binary"; column: string; positive: string[]; given?: string }
    | { name: string; type: "regression"; column: string; transform: "log1p"; missingLabel: "mask" }
  )[];
  truth: Record<string, string>;
}

export interface SimRow {
  request_id: string;
  user_id: string;
  user_segment: string;
  /** null = missing in the log (written as an empty cell). */
  user_activity: number | null;
  hour: number;
  device: Device;
  item_id: string;
  item_category: string;
  /** null = missing in the log (written as an empty cell). */
  item_price: number | null;
  item_quality: number;
  position: number;
  click: 0 | 1;
  purchase: 0 | 1;
  /** Seconds on the item's page; null (an empty cell) on an unclicked row. */
  dwell_s: number | null;
  /** True position-free click probability (relevance). */
  p_click: number;
  /** True purchase probability given a click. */
  p_purchase_given_click: number;
  /** Click probability at the logged position: p_click * examine(position). */
  p_click_observed: number;
  /** True position-free purchase probability per exposure: p_click * p_purchase_given_click. */
  p_purchase: number;
}

export const SIM_COLUMNS = [
  "request_id",
  "user_id",
  "user_segment",
  "user_activity",
  "hour",
  "device",
  "item_id",
  "item_category",
  "item_price",
  "item_quality",
  "position",
  "click",
  "purchase",
  "dwell_s",
  "p_click",
  "p_purchase_given_click",
  "p_click_observed",
  "p_purchase",
] as const satisfies readonly (keyof SimRow)[];

export const SIM_TRUTH_COLUMNS = [
  "p_click",
  "p_purchase_given_click",
  "p_click_observed",
  "p_purchase",
] as const;

export type Device = "mobile" | "desktop" | "tablet";

const SEGMENTS = 5;
const CATEGORIES = 20;
const DEVICES: readonly Device[] = ["mobile", "desktop", "tablet"];
const DEVICE_WEIGHTS = [0.6, 0.3, 0.1];
const DEVICE_EFFECT: Record<Device, number> = { mobile: 0.12, desktop: 0, tablet: -0.1 };

// Click model (logit scale). Affinity is dot(u, v) rescaled to unit variance.
const CLICK_BIAS = -1.45;
const CLICK_AFFINITY = 1.1;
const CLICK_QUALITY = 0.45;
const CLICK_ACTIVITY = 0.5;
const CLICK_HOUR_AMPLITUDE = 0.25;
/** Position examination: examine(pos) = 1 / (1 + pos)^POSITION_POWER. */
const POSITION_POWER = 0.7;

// Purchase-given-click model (its bias is SimulateOptions.purchaseBias).
const PURCHASE_AFFINITY = 0.9;
const PURCHASE_PRICE = -0.7;
const PURCHASE_QUALITY = 0.35;
const PRICE_LOG_MEAN = 3.2;

// Item popularity: Zipf-like weights 1 / rank^ZIPF_POWER over a random ranking of items.
const ZIPF_POWER = 0.9;

const MISSING_ACTIVITY_RATE = 0.02;
const MISSING_PRICE_RATE = 0.01;

export function examine(position: number): number {
  return 1 / (1 + position) ** POSITION_POWER;
}

export function buildSimSpec(dwellTask = true): SimSpecJson {
  return {
    format: "csv",
    delimiter: ",",
    header: true,
    missing: [""],
    group: "request_id",
    features: [
      { name: "user_id", type: "categorical", side: "user" },
      { name: "user_segment", type: "categorical", side: "user" },
      { name: "user_activity", type: "numeric", side: "user" },
      { name: "hour", type: "categorical", side: "context" },
      { name: "device", type: "categorical", side: "context" },
      { name: "item_id", type: "categorical", side: "item" },
      { name: "item_category", type: "categorical", side: "item" },
      { name: "item_price", type: "numeric", side: "item" },
      { name: "item_quality", type: "numeric", side: "item" },
    ],
    tasks: [
      { name: "click", type: "binary", column: "click", positive: ["1"] },
      { name: "purchase", type: "binary", column: "purchase", positive: ["1"], given: "click" },
      // Dwell given a click: unclicked rows have no dwell and take no part in this task.
      ...(dwellTask
        ? [
            {
              name: "dwell",
              type: "regression",
              column: "dwell_s",
              transform: "log1p",
              missingLabel: "mask",
            } as const,
          ]
        : []),
    ],
    // Per-exposure, position-free probabilities: what each head predicts, without position bias.
    truth: { click: "p_click", purchase: "p_purchase" },
  };
}

function validateOptions(opts: SimulateOptions): void {
  const positive = ["users", "items", "requests", "listSize", "latentDim"] as const;
  if (!Number.isSafeInteger(opts.seed)) throw new RangeError(`seed must be an integer, got ${opts.seed}`);
  for (const key of positive) {
    const value = opts[key];
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new RangeError(`${key} must be a positive integer, got ${value}`);
    }
  }
  if (!Number.isFinite(opts.purchaseBias))
    throw new RangeError(`purchaseBias must be a finite number, got ${opts.purchaseBias}`);
  if (opts.listSize > opts.items) {
    throw new RangeError(`listSize (${opts.listSize}) must not exceed items (${opts.items})`);
  }
}

const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));

function gaussianVector(rng: Rng, dim: number, scale: number): Float64Array {
  const v = new Float64Array(dim);
  for (let i = 0; i < dim; i++) v[i] = rng.normal() * scale;
  return v;
}

function gaussianMatrix(rng: Rng, rows: number, cols: number, scale: number): Float64Array[] {
  return Array.from({ length: rows }, () => gaussianVector(rng, cols, scale));
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] ?? 0) * (b[i] ?? 0);
  return s;
}

function matVec(m: Float64Array[], v: Float64Array): Float64Array {
  const out = new Float64Array(m.length);
  for (let i = 0; i < m.length; i++) out[i] = dot(m[i] as Float64Array, v);
  return out;
}

/** Index of the largest value of `m v + noise`. */
function noisyArgmax(rng: Rng, m: Float64Array[], v: Float64Array, noise: number): number {
  const scores = matVec(m, v);
  let best = 0;
  let bestScore = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < scores.length; i++) {
    const s = (scores[i] ?? 0) + noise * rng.normal();
    if (s > bestScore) {
      bestScore = s;
      best = i;
    }
  }
  return best;
}

interface SimUser {
  id: string;
  latent: Float64Array;
  segment: number;
  activity: number;
}

interface SimItem {
  id: string;
  latent: Float64Array;
  /** Latent vector seen by the purchase model: partly v, partly a second projection of v. */
  purchaseLatent: Float64Array;
  category: number;
  price: number;
  quality: number;
}

function round(x: number, digits: number): number {
  return Number(x.toFixed(digits));
}

export function simulate(options: Partial<SimulateOptions> = {}): { rows: SimRow[]; spec: SimSpecJson } {
  const opts: SimulateOptions = { ...DEFAULT_SIMULATE_OPTIONS, ...options };
  validateOptions(opts);
  const d = opts.latentDim;
  const latentScale = 1 / Math.sqrt(d);
  // dot(u, v) of two N(0, 1/d) vectors has variance 1/d; rescale to unit variance.
  const affinityScale = Math.sqrt(d);

  // Separate streams: the world does not change when only the number of requests changes.
  const worldRng = createRng(opts.seed, 1);
  const logRng = createRng(opts.seed, 2);

  const segmentProjection = gaussianMatrix(worldRng, SEGMENTS, d, 1);
  const categoryProjection = gaussianMatrix(worldRng, CATEGORIES, d, 1);
  const purchaseProjection = gaussianMatrix(worldRng, d, d, latentScale);
  const categoryPriceEffect = Array.from({ length: CATEGORIES }, () => 0.5 * worldRng.normal());
  const hourEffect = Array.from(
    { length: 24 },
    (_, h) => CLICK_HOUR_AMPLITUDE * Math.cos((2 * Math.PI * (h - 20)) / 24) + 0.05 * worldRng.normal(),
  );
  // Diurnal traffic: more requests in the evening, few at night.
  const hourCum = cumulative(
    Array.from({ length: 24 }, (_, h) => 1 + 0.8 * Math.cos((2 * Math.PI * (h - 20)) / 24)),
  );
  const deviceCum = cumulative(DEVICE_WEIGHTS);

  const users: SimUser[] = [];
  for (let i = 0; i < opts.users; i++) {
    const latent = gaussianVector(worldRng, d, latentScale);
    const segment = noisyArgmax(worldRng, segmentProjection, latent, 0.3 * latentScale);
    const activity = Math.exp(0.7 * worldRng.normal());
    users.push({ id: `u${i}`, latent, segment, activity });
  }

  const items: SimItem[] = [];
  for (let i = 0; i < opts.items; i++) {
    const latent = gaussianVector(worldRng, d, latentScale);
    const category = noisyArgmax(worldRng, categoryProjection, latent, 0.3 * latentScale);
    const projected = matVec(purchaseProjection, latent);
    const purchaseLatent = new Float64Array(d);
    for (let k = 0; k < d; k++) purchaseLatent[k] = 0.6 * (latent[k] ?? 0) + 0.8 * (projected[k] ?? 0);
    const price = Math.exp(PRICE_LOG_MEAN + (categoryPriceEffect[category] ?? 0) + 0.6 * worldRng.normal());
    const quality = worldRng.normal();
    items.push({ id: `i${i}`, latent, purchaseLatent, category, price, quality });
  }

  // Popularity: Zipf over a random ranking of items; users sampled proportionally to activity.
  const popularityRank = shuffle(
    worldRng,
    Array.from({ length: opts.items }, (_, i) => i),
  );
  const itemWeights = new Array<number>(opts.items).fill(0);
  popularityRank.forEach((itemIndex, rank) => {
    itemWeights[itemIndex] = 1 / (rank + 1) ** ZIPF_POWER;
  });
  const itemCum = cumulative(itemWeights);
  const userCum = cumulative(users.map((u) => u.activity));

  const rows: SimRow[] = [];
  const chosen = new Set<number>();
  const chosenList: number[] = [];
  for (let r = 0; r < opts.requests; r++) {
    const user = users[sampleCumulative(logRng, userCum)] as SimUser;
    const hour = sampleCumulative(logRng, hourCum);
    const device = DEVICES[sampleCumulative(logRng, deviceCum)] as Device;
    const contextLogit =
      CLICK_BIAS + CLICK_ACTIVITY * Math.log(user.activity) + (hourEffect[hour] ?? 0) + DEVICE_EFFECT[device];
    const activityMissing = logRng.uniform() < MISSING_ACTIVITY_RATE;

    chosen.clear();
    chosenList.length = 0;
    // Popularity-weighted draws without replacement; fall back to uniform after many collisions.
    let attempts = 0;
    while (chosenList.length < opts.listSize) {
      const idx = attempts < 50 * opts.listSize ? sampleCumulative(logRng, itemCum) : logRng.int(opts.items);
      attempts++;
      if (chosen.has(idx)) continue;
      chosen.add(idx);
      chosenList.push(idx);
    }
    shuffle(logRng, chosenList);

    const requestId = `r${r}`;
    for (let position = 0; position < chosenList.length; position++) {
      const item = items[chosenList[position] as number] as SimItem;
      const affinity = dot(user.latent, item.latent) * affinityScale;
      const pClick = sigmoid(contextLogit + CLICK_AFFINITY * affinity + CLICK_QUALITY * item.quality);
      const pObserved = pClick * examine(position);
      const purchaseAffinity = dot(user.latent, item.purchaseLatent) * affinityScale;
      const pPurchase = sigmoid(
        opts.purchaseBias +
          PURCHASE_AFFINITY * purchaseAffinity +
          PURCHASE_PRICE * (Math.log(item.price) - PRICE_LOG_MEAN) +
          PURCHASE_QUALITY * item.quality,
      );
      const click: 0 | 1 = logRng.uniform() < pObserved ? 1 : 0;
      const purchaseDraw = logRng.uniform();
      const dwellNoise = logRng.normal();
      const priceMissing = logRng.uniform() < MISSING_PRICE_RATE;
      const purchase: 0 | 1 = click === 1 && purchaseDraw < pPurchase ? 1 : 0;
      // Seconds on the item's page: only a click opens it, so an unclicked row has none (empty).
      const dwell =
        click === 1
          ? Math.exp(3 + 0.35 * affinity + 0.15 * item.quality + 0.3 * purchase + 0.6 * dwellNoise)
          : null;

      rows.push({
        request_id: requestId,
        user_id: user.id,
        user_segment: `s${user.segment}`,
        user_activity: activityMissing ? null : round(user.activity, 4),
        hour,
        device,
        item_id: item.id,
        item_category: `c${item.category}`,
        item_price: priceMissing ? null : round(item.price, 2),
        item_quality: round(item.quality, 4),
        position,
        click,
        purchase,
        dwell_s: dwell === null ? null : round(dwell, 1),
        p_click: round(pClick, 6),
        p_purchase_given_click: round(pPurchase, 6),
        p_click_observed: round(pObserved, 6),
        p_purchase: round(pClick * pPurchase, 6),
      });
    }
  }

  return { rows, spec: buildSimSpec(opts.dwellTask) };
}

function cell(value: SimRow[keyof SimRow]): string {
  if (value === null) return "";
  return String(value);
}

/** The rows as CSV text (header + one line per row, trailing newline). */
export function toCsv(rows: readonly SimRow[]): string {
  const lines: string[] = new Array(rows.length + 1);
  lines[0] = SIM_COLUMNS.join(",");
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i] as SimRow;
    lines[i + 1] = SIM_COLUMNS.map((c) => cell(row[c])).join(",");
  }
  return `${lines.join("\n")}\n`;
}

export interface SimStats {
  rows: number;
  requests: number;
  clickRate: number;
  purchaseRate: number;
  /** Purchases per click (NaN when there are no clicks). */
  purchaseGivenClickRate: number;
}

export function summarize(rows: readonly SimRow[]): SimStats {
  let clicks = 0;
  let purchases = 0;
  const requests = new Set<string>();
  for (const row of rows) {
    clicks += row.click;
    purchases += row.purchase;
    requests.add(row.request_id);
  }
  const n = rows.length;
  return {
    rows: n,
    requests: requests.size,
    clickRate: n > 0 ? clicks / n : 0,
    purchaseRate: n > 0 ? purchases / n : 0,
    purchaseGivenClickRate: clicks > 0 ? purchases / clicks : Number.NaN,
  };
}

export interface WriteSimulationResult {
  dataPath: string;
  specPath: string;
  rowCount: number;
  stats: SimStats;
}

/** Simulates and writes `dir/data.csv` and `dir/spec.json`. */
export function writeSimulation(dir: string, options: Partial<SimulateOptions> = {}): WriteSimulationResult {
  const { rows, spec } = simulate(options);
  mkdirSync(dir, { recursive: true });
  const dataPath = join(dir, "data.csv");
  const specPath = join(dir, "spec.json");
  writeFileSync(dataPath, toCsv(rows));
  writeFileSync(specPath, `${JSON.stringify(spec, null, 2)}\n`);
  return { dataPath, specPath, rowCount: rows.length, stats: summarize(rows) };
}
