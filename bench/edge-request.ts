/**
 * The non-inference part of a rerank, in Node with the worker's own functions: body read +
 * JSON.parse, schema validation, dedup + filters, encoding, fusion + ordering + items (inference
 * replaced by precomputed head values), and the response JSON. Per phase p50 over --runs
 * requests, at 200 and 1,000 candidates, on the reference-shape model's features; phases are
 * timed in the order a request runs them, one request after another.
 *
 *   tsx bench/edge-request.ts [--runs 300]
 */
import { loadavg } from "node:os";
import { performance } from "node:perf_hooks";
import * as v from "valibot";
import { readJsonBody } from "../edge/http/body.ts";
import { ServerTiming } from "../edge/http/server-timing.ts";
import type { LoadedModel } from "../edge/model/serving-model.ts";
import { arrange } from "../edge/rerank/arrange.ts";
import { applyFilters } from "../edge/rerank/filters.ts";
import { rankCandidates, resolveFusion, uniqueCandidates } from "../edge/rerank/rank.ts";
import { rerankRequestParser, rerankRequestSchema } from "../edge/rerank/schema.ts";
import { compileEncoder } from "../shared/encoder/encode.ts";
import { requestBody } from "../test/fixtures/request-body.ts";
import { referenceFeatures, syntheticEncoder } from "../test/fixtures/synthetic-model.ts";
import { quantile } from "./timing.ts";

const PHASES = ["read", "validate", "select", "encode", "fuse", "json"] as const;
/** Also timed, outside the total: the whole body through valibot, as before candidate-check.ts. */
type Phase = (typeof PHASES)[number];

function parseRuns(argv: readonly string[]): number {
  const at = argv.indexOf("--runs");
  if (at < 0) return 300;
  const runs = Number(argv[at + 1]);
  if (!Number.isInteger(runs) || runs < 5)
    throw new Error(`--runs: expected an integer >= 5, got "${argv[at + 1]}"`);
  return runs;
}

export async function requestPhases(
  n: number,
  runs: number,
): Promise<Record<Phase | "total" | "valibotOnly", number>> {
  const state = syntheticEncoder(referenceFeatures());
  const encoder = compileEncoder(state);
  const heads = ["click", "purchase"];
  const schema = rerankRequestSchema(heads);
  const parse = rerankRequestParser(heads);
  const text = JSON.stringify(requestBody(state, n, n));
  const values = Object.fromEntries(
    heads.map((h, k) => [h, Float32Array.from({ length: n }, (_, i) => ((i * 7919 + k) % 1000) / 1000)]),
  );
  const model = {
    manifest: { heads: heads.map((name) => ({ name })) },
    encoder,
    graph: "plain",
    predict: async () => values,
  } as unknown as LoadedModel;
  const defaults = { weights: { click: 1, purchase: 2 }, mode: "sum" as const };
  const times: Record<Phase | "valibotOnly", number[]> = {
    valibotOnly: [],
    read: [],
    validate: [],
    select: [],
    encode: [],
    fuse: [],
    json: [],
  };
  const warmup = Math.max(20, runs / 5);
  for (let i = 0; i < warmup + runs; i++) {
    const t0 = performance.now();
    const body = await readJsonBody(
      new Request("http://x/v1/rerank", { method: "POST", body: text }),
      1 << 20,
    );
    if (!body.ok) throw new Error("bench: body not read");
    const t1 = performance.now();
    const parsed = parse(body.value);
    if (!parsed.success) throw new Error("bench: request invalid");
    const request = parsed.output;
    const t2 = performance.now();
    // valibot alone, as the worker validated before candidate-check.ts (not part of the total).
    if (!v.safeParse(schema, body.value).success) throw new Error("bench: request invalid");
    const t2b = performance.now();
    const unique = uniqueCandidates(request.candidates);
    const { kept, filtered } = applyFilters(unique, request.filters);
    const t3 = performance.now();
    const timing = new ServerTiming();
    let encodeEnd = 0;
    const items = await rankCandidates(
      {
        ...model,
        predict: async () => {
          encodeEnd = performance.now();
          return values;
        },
      },
      request,
      kept,
      resolveFusion(request, defaults),
      timing,
      (order) => arrange(order, kept, request.pinned, request.topK),
    );
    const t5 = performance.now();
    const out = JSON.stringify({
      model: { id: "m", version: "1" },
      fallback: false,
      items,
      removed: { duplicates: 0, filtered },
    });
    const t6 = performance.now();
    if (out.length < n * 10) throw new Error("bench: response too short");
    if (i < warmup) continue;
    times.read.push(t1 - t0);
    times.validate.push(t2 - t1);
    times.valibotOnly.push(t2b - t2);
    times.select.push(t3 - t2b);
    times.encode.push(encodeEnd - t3);
    times.fuse.push(t5 - encodeEnd);
    times.json.push(t6 - t5);
  }
  const r = (x: number) => Math.round(x * 1000) / 1000;
  const result = Object.fromEntries(PHASES.map((p) => [p, r(quantile(times[p], 0.5))])) as Record<
    Phase | "total" | "valibotOnly",
    number
  >;
  result.total = r(PHASES.reduce((a, p) => a + result[p], 0));
  result.valibotOnly = r(quantile(times.valibotOnly, 0.5));
  return result;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const runs = parseRuns(process.argv.slice(2));
  console.log(
    `load average ${loadavg()
      .map((x) => x.toFixed(2))
      .join(" ")}`,
  );
  for (const n of [200, 1000]) {
    const p = await requestPhases(n, runs);
    console.log(
      `${String(n).padStart(5)} cand | ${Object.entries(p)
        .map(([k, x]) => `${k} ${x.toFixed(3)}`)
        .join(" | ")} ms (p50)`,
    );
  }
}
