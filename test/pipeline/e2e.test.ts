/**
 * The pipeline end to end in local mode (trainer/pipeline/run.ts): small simulated days, a
 * frozen holdout, wrangler's local R2/KV state in a temporary folder. Run 1 publishes; a gate
 * the candidate cannot meet refuses and leaves the pointer; a dry run publishes nothing; run 3
 * publishes (warm-started); rollback restores run 1's model; a failed smoke test flips back; bad
 * data fails with a record and the champion unchanged. About a minute: each run trains two
 * epochs of a tiny network and starts the infra check's child process.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfig } from "../../trainer/pipeline/config.ts";
import { pipelineStatus, rollback } from "../../trainer/pipeline/ops.ts";
import type { RunRecord } from "../../trainer/pipeline/record.ts";
import { listRecords } from "../../trainer/pipeline/registry/history.ts";
import { type LocalRegistry, localRegistry } from "../../trainer/pipeline/registry/local.ts";
import { acquireLock } from "../../trainer/pipeline/registry/lock.ts";
import { publishModel } from "../../trainer/pipeline/registry/publish.ts";
import { runPipeline } from "../../trainer/pipeline/run.ts";
import { simulate, toCsv } from "../../trainer/simulate/simulator.ts";
import { MemoryRegistry } from "./memory-registry.ts";

let dir: string;
let registry: LocalRegistry;
const lines: string[] = [];
const log = (line: string) => lines.push(line);

/** A config over the temporary folder; `patch` replaces top-level fields. */
function config(day: string, patch: Record<string, unknown> = {}) {
  return parseConfig(
    {
      data: { source: day, spec: "spec.json" },
      training: { arch: "shared-bottom", epochs: 2, options: { bottom: [16], tower: [8], cross: 0 } },
      evaluation: { holdout: "holdout.csv", newest: { rows: 500 } },
      // The days are small random halves of one log: id-like features move by chance alone.
      drift: { warn: { psi: 2, js: 1, unseen: 1, rate: 1 }, stop: { psi: 5, js: 1, unseen: 1, rate: 1 } },
      gate: {
        floors: [{ task: "click", metric: "auc", min: 0.5 }],
        changes: [{ task: "click", metric: "auc", direction: "higher", maxDrop: 0.05 }],
        int8: { maxAucDrop: 0.01 },
        size: { modelBytes: 1_000_000 },
      },
      registry: { local: { persistTo: "state" } },
      ...patch,
    },
    join(dir, "pipeline.json"),
  );
}

const pointer = () => registry.getPointer("models/current");

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "mtrank-pipeline-e2e-"));
  const { rows, spec } = simulate({ seed: 7, users: 300, items: 200, requests: 900 });
  await mkdir(join(dir, "day1"));
  await mkdir(join(dir, "day2"));
  await writeFile(join(dir, "day1", "part-0.csv"), toCsv(rows.slice(0, 3000)));
  await writeFile(join(dir, "day2", "part-0.csv"), toCsv(rows.slice(3000, 6000)));
  // day2's rows in another order, for the runs after run 3 published day2: a day whose files an
  // earlier published run had (by sha256) is refused as delivered again.
  await mkdir(join(dir, "day2r"));
  await writeFile(join(dir, "day2r", "part-0.csv"), toCsv(rows.slice(3000, 6000).reverse()));
  await writeFile(join(dir, "holdout.csv"), toCsv(rows.slice(6000)));
  await writeFile(join(dir, "spec.json"), JSON.stringify(spec));
  registry = localRegistry({ persistTo: join(dir, "state") });
});

afterAll(async () => {
  await registry?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("pipeline end to end (local mode)", { timeout: 240_000 }, () => {
  let first: RunRecord;
  let third: RunRecord;

  it("run 1 (no champion) passes on floors alone and publishes: the pointer is set", async () => {
    const r = await runPipeline(config("day1"), { log });
    first = r.record;
    expect(r.exitCode, r.record.reason).toBe(0);
    expect(first.outcome).toBe("published");
    expect(first.training).toMatchObject({ mode: "scratch", why: "no champion to start from (first run)" });
    expect(first.gate!.results.find((x) => x.rule.startsWith("change"))!.detail).toMatch(
      /skipped: no champion/,
    );
    expect(await pointer()).toBe(first.published!.prefix);
    // Each step logged one line with its duration.
    for (const step of [
      "lock",
      "champion",
      "data",
      "drift",
      "train",
      "export",
      "evaluate",
      "infra",
      "gate",
      "publish",
    ])
      expect(
        lines.some((l) => new RegExp(`^${step}\\s+\\d+\\.\\d s  `).test(l)),
        step,
      ).toBe(true);
    // The published directory carries what the next run needs.
    const keys = await registry.list(first.published!.prefix);
    for (const file of [
      "manifest.json",
      "model.onnx",
      "model.int8.onnx",
      "data-stats.json",
      "spec.json",
      "training/network.json",
    ])
      expect(keys).toContain(`${first.published!.prefix}${file}`);
  });

  it("run 2 with a gate it cannot meet is refused with a readable reason; the pointer stays", async () => {
    const before = await pointer();
    const base = config("day2");
    const r = await runPipeline(
      {
        ...base,
        gate: {
          ...base.gate,
          floors: [{ task: "click", metric: "auc", min: 0.99, on: "holdout" }],
          // Bounds no drop can break: these show the paired bounds reach the gate through the run.
          changes: [
            {
              task: "click",
              metric: "auc",
              direction: "higher",
              maxDrop: 1,
              confidence: 0.95,
              on: "holdout",
            },
            { task: "click", metric: "auc", direction: "higher", maxDrop: 1, confidence: 0.95, on: "newest" },
            // At 50 % the bound is the resampled drops' median: the report's drop, if the rows'
            // losses are on the labels' (log1p) scale.
            {
              task: "dwell",
              metric: "mse",
              direction: "lower",
              maxDrop: 1e9,
              confidence: 0.5,
              on: "holdout",
            },
            { metric: "ndcg10", direction: "higher", maxDrop: 1, confidence: 0.5, on: "holdout" },
          ],
        },
      },
      { log },
    );
    expect(r.exitCode).toBe(2);
    expect(r.record.outcome).toBe("refused");
    expect(r.record.reason).toMatch(
      /^the gate refused: floor click auc >= 0.99: 0\.\d+ is below the floor 0.99$/,
    );
    expect(await pointer()).toBe(before);
    // Warm-started from the champion, scored beside it on the same holdout.
    expect(r.record.training).toMatchObject({ mode: "warm-start" });
    const holdout = r.record.metrics!.holdout;
    expect(holdout.candidate!.rows).toBe(holdout.champion!.rows);
    expect(holdout.champion!.tasks.click!.auc).toBeCloseTo(
      first.metrics!.holdout.candidate!.tasks.click!.auc!,
      6,
    );
    expect(r.record.metrics!.holdoutInt8!.candidate!.tasks.click!.auc).toBeGreaterThan(0.5);
    expect(r.record.metrics!.newest!.candidate!.rows).toBe(500);
    const [onHoldout, onNewest] = r.record.gate!.results.filter((x) => x.rule.startsWith("change"));
    const drop = holdout.champion!.tasks.click!.auc! - holdout.candidate!.tasks.click!.auc!;
    const shown = String(Number(drop.toPrecision(4))); // the gate's four significant digits
    expect(onHoldout!.detail).toContain(`: drop ${shown}, upper bound `);
    expect(onHoldout!.detail).toMatch(/upper bound -?0\.\d+ <= 1 \(95%, paired bootstrap over \d+ rows\)$/);
    expect(onHoldout!.detail).toContain(`over ${holdout.candidate!.rows} rows`);
    expect(onHoldout!.value!).toBeGreaterThan(drop);
    expect(onNewest!.detail).toMatch(/\(95%, paired bootstrap over 500 rows\)$/);
    const onDwell = r.record.gate!.results.find((x) => x.rule.startsWith("change dwell mse"))!;
    const [championMse, candidateMse] = [
      holdout.champion!.tasks.dwell!.mse!,
      holdout.candidate!.tasks.dwell!.mse!,
    ];
    expect(Math.abs(onDwell.value! - (candidateMse - championMse))).toBeLessThan(
      0.05 * Math.max(championMse, candidateMse),
    );
    expect(onDwell.detail).toContain(`over ${holdout.candidate!.tasks.dwell!.count} rows`);
    const onNdcg = r.record.gate!.results.find((x) => x.rule.startsWith("change ndcg10"))!;
    const ndcgDrop = holdout.champion!.ranking!.ndcg10 - holdout.candidate!.ranking!.ndcg10;
    expect(Math.abs(onNdcg.value! - ndcgDrop)).toBeLessThan(0.01);
    expect(onNdcg.detail).toMatch(/paired bootstrap over \d+ groups\)$/);
    expect(r.record.drift!.level).toBe("ok");
    // Every rule with its threshold and value, in the record the registry keeps.
    const stored = (await listRecords(registry, { limit: 1 }))[0]!.record as RunRecord;
    expect(stored.runId).toBe(r.record.runId);
    expect(stored.gate!.results[0]).toMatchObject({ passed: false, threshold: 0.99 });
    expect(stored.data!.files[0]!.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(stored.spec!.sha256).toBe(stored.spec!.championSha256);
    const html = await readFile(r.files.html, "utf8");
    expect(html).toContain("Candidate against champion");
  });

  it("a dry run publishes nothing and stores no record", async () => {
    const before = await pointer();
    const records = (await listRecords(registry)).length;
    const r = await runPipeline(config("day2"), { dryRun: true, log });
    expect(r.exitCode, r.record.reason).toBe(0);
    expect(r.record.outcome).toBe("dry-run");
    expect(r.record.reason).toMatch(/^dry run: would publish /);
    expect(await pointer()).toBe(before);
    expect((await listRecords(registry)).length).toBe(records);
    expect(await readFile(r.files.json, "utf8")).toContain('"dry-run"');
  });

  it("a holdout without a column the champion reads: the champion is not scored, the change rules fail", async () => {
    const spec = JSON.parse(await readFile(join(dir, "spec.json"), "utf8")) as {
      features: { name: string }[];
    };
    const dropped = spec.features.at(-1)!.name;
    const without = { ...spec, features: spec.features.filter((f) => f.name !== dropped) };
    await writeFile(join(dir, "spec-without.json"), JSON.stringify(without));
    const [header, ...rows] = (await readFile(join(dir, "holdout.csv"), "utf8")).trim().split("\n");
    const at = header!.split(",").indexOf(dropped);
    const cut = (line: string) =>
      line
        .split(",")
        .filter((_, i) => i !== at)
        .join(",");
    await writeFile(join(dir, "holdout-without.csv"), `${[header!, ...rows].map(cut).join("\n")}\n`);
    const r = await runPipeline(
      config("day2", {
        data: { source: "day2", spec: "spec-without.json" },
        evaluation: { holdout: "holdout-without.csv" },
      }),
      { dryRun: true, log },
    );
    expect(r.record.gate!.blessed).toBe(false);
    expect(r.record.reason).toMatch(/^dry run: would refuse|refused/);
    const change = r.record.gate!.results.find((g) => g.rule.startsWith("change click auc"))!;
    expect(change.passed).toBe(false);
    expect(change.detail).toBe(
      `the champion could not be evaluated: the holdout has no column "${dropped}", which the champion reads`,
    );
  });

  it("run 3 publishes over the champion; rollback restores the previous pointer", async () => {
    const r = await runPipeline(config("day2"), { log });
    third = r.record;
    expect(r.exitCode, third.reason).toBe(0);
    expect(third.published!.previous).toBe(first.published!.prefix);
    expect(await pointer()).toBe(third.published!.prefix);
    const back = await rollback(registry);
    expect(back.kind).toBe("rollback");
    expect(back.rollback).toMatchObject({ from: third.published!.prefix, to: first.published!.prefix });
    expect(await pointer()).toBe(first.published!.prefix);
    const status = await pipelineStatus(registry, 2);
    expect(status.pointers[0]).toMatchObject({ pointer: "models/current", id: first.published!.id });
    expect(status.runs[0]!.kind).toBe("rollback");
  });

  it("a failed smoke test flips the pointer back and exits non-zero", async () => {
    const before = await pointer();
    // A worker that keeps serving the old model: the new one never shows up.
    const server = createServer((_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ models: [{ id: "old", version: "v0", arm: "champion" }] }));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const r = await runPipeline(config("day2r", { smoke: { url, timeoutS: 1, pollS: 0.1 } }), { log });
      expect(r.exitCode).toBe(1);
      expect(r.record.outcome).toBe("rolled-back");
      expect(r.record.smoke!.passed).toBe(false);
      expect(r.record.rollback).toMatchObject({ pointer: "models/current", to: before });
      expect(await pointer()).toBe(before);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it("bad data fails the run with a record; the champion is unchanged", async () => {
    const before = await pointer();
    await mkdir(join(dir, "day3"));
    const good = await readFile(join(dir, "day2", "part-0.csv"), "utf8");
    const [header, ...rest] = good.trim().split("\n");
    const columns = header!.split(",");
    const broken = rest[5]!.split(",");
    broken[columns.indexOf("item_price")] = "cheap";
    await writeFile(
      join(dir, "day3", "part-0.csv"),
      [header, ...rest.slice(0, 5), broken.join(","), ...rest.slice(6)].join("\n"),
    );
    const r = await runPipeline(config("day3"), { log });
    expect(r.exitCode).toBe(1);
    expect(r.record.outcome).toBe("failed");
    expect(r.record.reason).toMatch(/item_price/);
    expect(await pointer()).toBe(before);
    const stored = (await listRecords(registry, { limit: 1 }))[0]!.record as RunRecord;
    expect(stored).toMatchObject({ outcome: "failed", runId: r.record.runId });
    // The lock was released: another run can take it.
    expect(await registry.get("locks/pipeline")).toBeUndefined();
  });

  it("an interrupted run (SIGINT) stops before publishing: the record is stored, the lock released", async () => {
    const before = await pointer();
    const stop = new AbortController();
    // Interrupted while the drift step runs: the run stops at the next step, training.
    const r = await runPipeline(config("day2r"), {
      signal: stop.signal,
      log: (line) => {
        log(line);
        if (line.startsWith("drift")) stop.abort("SIGINT");
      },
    });
    expect(r.exitCode).toBe(1);
    expect(r.record.outcome).toBe("failed");
    expect(r.record.reason).toBe("interrupted (SIGINT) before train; nothing was published");
    expect(r.record.steps.map((s) => s.step)).not.toContain("export");
    expect(await pointer()).toBe(before);
    const stored = (await listRecords(registry, { limit: 1 }))[0]!.record as RunRecord;
    expect(stored).toMatchObject({ runId: r.record.runId, reason: r.record.reason });
    expect(await registry.get("locks/pipeline")).toBeUndefined();
  });

  it("a NaN loss fails the run, saying where and why; the champion is unchanged", async () => {
    const before = await pointer();
    const base = config("day2r");
    const r = await runPipeline({ ...base, training: { ...base.training, learningRate: 1e6 } }, { log });
    expect(r.exitCode).toBe(1);
    expect(r.record.outcome).toBe("failed");
    // Stopped at the step that went non-finite, with the cause the data check found.
    expect(r.record.reason).toMatch(
      /^training diverged (in fold network 1 of \d+ )?at epoch 1, step \d+ of \d+: the loss.*; likely cause: the learning rate is too high for this data \(--learning-rate 1000000\)/,
    );
    expect(r.record.steps.find((s) => s.step === "train")).toMatchObject({ ok: false });
    expect(await pointer()).toBe(before);
  });

  it("--force-publish publishes past a refusal, with the reason recorded", async () => {
    const base = config("day2r");
    const r = await runPipeline(
      {
        ...base,
        gate: { ...base.gate, floors: [{ task: "click", metric: "auc", min: 0.99, on: "holdout" }] },
      },
      { log, forcePublish: { reason: "incident 42: the old model is broken" } },
    );
    expect(r.exitCode, r.record.reason).toBe(0);
    expect(r.record.gate!.blessed).toBe(false);
    expect(r.record.forced).toEqual({ reason: "incident 42: the old model is broken" });
    expect(r.record.reason).toMatch(/\(forced: incident 42/);
    expect(await pointer()).toBe(r.record.published!.prefix);
  });
});

describe("a champion published by hand", { timeout: 120_000 }, () => {
  it("is scored beside the candidate; training starts from scratch and the record says why", async () => {
    const memory = new MemoryRegistry();
    // fixtures/model: the simulator's features, heads click and purchase, no stats, no weights.
    const hand = await publishModel(memory, "fixtures/model", { extraFiles: ["spec.json"] });
    await memory.setPointer("models/current", hand.prefix);
    const base = config("day1");
    const r = await runPipeline({ ...base, gate: { ...base.gate, infra: false } }, { registry: memory, log });
    expect(r.record.champion).toMatchObject({ id: hand.id, prefix: hand.prefix });
    expect(r.record.drift!.skipped).toBe("not checked: the champion has no data-stats.json");
    // The simulator's spec has a dwell task the fixture's lacks.
    expect(r.record.training).toMatchObject({
      mode: "scratch",
      why: expect.stringMatching(/^the spec changed/),
    });
    expect(r.record.metrics!.holdout.champion!.tasks.click!.auc).toBeGreaterThan(0.5);
    expect(
      lines.some((l) =>
        /fusion export's defaults \(the heads changed: click, purchase → click, dwell, purchase\)/.test(l),
      ),
    ).toBe(true);
    expect(r.record.outcome).toMatch(/published|refused/);
  });
});

describe("a held lock", () => {
  it("ends the run at once, naming the holder; the record is stored and the lock left alone", async () => {
    const memory = new MemoryRegistry();
    const release = await acquireLock(memory, { owner: "nightly on ci-7", ttlMs: 60_000 });
    const r = await runPipeline(config("day1"), { registry: memory, log });
    expect(r.exitCode).toBe(1);
    expect(r.record.outcome).toBe("failed");
    expect(r.record.reason).toMatch(/locks\/pipeline is held by "nightly on ci-7"/);
    expect(r.record.steps.map((s) => s.step)).toEqual(["lock"]);
    expect((await listRecords(memory)).length).toBe(1);
    expect(await release()).toBe(true); // still the holder's
  });
});
