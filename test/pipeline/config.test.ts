/** pipeline.json (trainer/pipeline/config.ts): defaults resolved once, and errors that name the field. */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseSpec } from "../../shared/spec.ts";
import {
  ConfigError,
  checkConfigAgainstSpec,
  DEFAULT_DRIFT,
  loadConfig,
  parseConfig,
} from "../../trainer/pipeline/config.ts";

/** A KV namespace id in the form Cloudflare issues. */
const NS = "0f2ac74b498b48028cb68387c421e279";

const minimal = () => ({
  data: { source: "data/", spec: "spec.json" },
  evaluation: { holdout: "holdout.csv" },
  gate: { floors: [{ task: "click", metric: "auc", min: 0.6 }] },
  registry: { local: { persistTo: ".wrangler/state" } },
});

/** The error line parseConfig throws for `json`. */
function errorOf(json: unknown): string {
  try {
    parseConfig(json, "/cfg/pipeline.json");
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error("expected a ConfigError");
}

describe("pipeline config", () => {
  it("reads the configs docs/pipeline.md shows", async () => {
    const doc = await readFile("docs/pipeline.md", "utf8");
    // A block is a whole config, a gate rule, or top-level fields ("registry": {...}).
    const blocks = [...doc.matchAll(/```json\n([\s\S]*?)```/g)].map(
      (m) => JSON.parse(m[1]!.trim().startsWith('"') ? `{${m[1]}}` : m[1]!) as Record<string, unknown>,
    );
    const [example, ...parts] = blocks as [Record<string, unknown>, ...Record<string, unknown>[]];
    const c = parseConfig(example, "/cfg/pipeline.json");
    expect(c.gate.changes.some((r) => r.confidence === 0.95)).toBe(true);
    expect(parts.length).toBeGreaterThanOrEqual(3);
    for (const part of parts) {
      const config =
        "metric" in part
          ? { ...example, gate: { ...(example.gate as object), changes: [part] } }
          : { ...example, ...part };
      expect(() => parseConfig(config, "/cfg/pipeline.json"), JSON.stringify(part)).not.toThrow();
    }
  });

  it("fills every default once, with paths relative to the config's folder", () => {
    const c = parseConfig(minimal(), "/cfg/pipeline.json");
    expect(c.file).toBe("/cfg/pipeline.json");
    expect(c.data).toEqual({ source: "/cfg/data", spec: "/cfg/spec.json", maxBadRows: 0 });
    expect(c.training).toMatchObject({ arch: "shared-bottom", warmStart: true, options: {} });
    expect(c.evaluation).toEqual({ holdout: "/cfg/holdout.csv", threshold: 0.5 });
    expect(c.drift).toEqual(DEFAULT_DRIFT);
    expect(c.gate).toEqual({
      floors: [{ task: "click", metric: "auc", min: 0.6, on: "holdout" }],
      changes: [],
      infra: true,
    });
    expect(c.registry).toEqual({
      kind: "local",
      persistTo: "/cfg/.wrangler/state",
      bucket: "mtrank-models",
      namespaceId: "mtrank-pointers",
    });
    expect(c.publish).toEqual({ pointer: "current" });
    expect(c.smoke).toBeUndefined();
    expect(c.fusion).toBeUndefined();
    expect(c.workDir).toBe("/cfg/out/pipeline");
    expect(c.lock).toEqual({ ttlMs: 240 * 60_000 });
  });

  it("gate.infra: true, false or the serving worker's caps; gate.size.manifestBytes", () => {
    const floors = [{ task: "click", metric: "auc", min: 0.6 }];
    const caps = { manifestMaxBytes: 33_554_432, modelMaxBytes: 8_388_608 };
    const c = parseConfig(
      { ...minimal(), gate: { floors, infra: caps, size: { manifestBytes: 4_000_000 } } },
      "/cfg/pipeline.json",
    );
    expect(c.gate.infra).toEqual(caps);
    expect(c.gate.size).toEqual({ manifestBytes: 4_000_000 });
    expect(parseConfig({ ...minimal(), gate: { floors, infra: false } }, "/cfg/p.json").gate.infra).toBe(
      false,
    );
  });

  it("an s3:// source stays a URL", () => {
    const c = parseConfig(
      { ...minimal(), data: { source: "s3://logs/daily/", spec: "spec.json" } },
      "/cfg/p.json",
    );
    expect(c.data.source).toBe("s3://logs/daily/");
  });

  it("remote registry: credentials by environment variable name only", () => {
    const c = parseConfig(
      { ...minimal(), registry: { remote: { bucket: "models", namespaceId: NS } } },
      "p.json",
    );
    expect(c.registry).toEqual({
      kind: "remote",
      bucket: "models",
      namespaceId: NS,
      accountIdEnv: "CLOUDFLARE_ACCOUNT_ID",
      apiTokenEnv: "CLOUDFLARE_API_TOKEN",
      accessKeyIdEnv: "R2_ACCESS_KEY_ID",
      secretAccessKeyEnv: "R2_SECRET_ACCESS_KEY",
    });
    // A token written into the file is refused: secrets come from the environment.
    expect(
      errorOf({
        ...minimal(),
        registry: { remote: { bucket: "models", namespaceId: NS, apiToken: "s3cret" } },
      }),
    ).toBe(
      "/cfg/pipeline.json: registry.remote.apiToken: a config holds no credentials; set the environment variable CLOUDFLARE_API_TOKEN (or name another with apiTokenEnv)",
    );
  });

  it("smoke, newest slice, fusion, drift and publish are read", () => {
    const c = parseConfig(
      {
        ...minimal(),
        evaluation: { holdout: "h.csv", newest: { timeColumn: "ts" } },
        smoke: { url: "https://rank.example.workers.dev/", apiKeyEnv: "MTRANK_KEY", abSalt: "exp-7" },
        export: { fusion: { weights: { click: 1, purchase: 3 } } },
        drift: { stop: { psi: 0.5 } },
        publish: { pointer: "challenger" },
      },
      "/cfg/p.json",
    );
    expect(c.evaluation.newest).toEqual({ timeColumn: "ts", hours: 24, numbers: "seconds" });
    expect(c.smoke).toEqual({
      url: "https://rank.example.workers.dev",
      timeoutS: 120,
      pollS: 5,
      apiKeyEnv: "MTRANK_KEY",
      abSalt: "exp-7",
    });
    expect(c.fusion).toEqual({ weights: { click: 1, purchase: 3 } });
    expect(c.drift.stop.psi).toBe(0.5);
    expect(c.drift.warn.psi).toBe(DEFAULT_DRIFT.warn.psi);
    expect(c.publish.pointer).toBe("challenger");
  });

  it("data.complete: a marker (true is _SUCCESS), a quiet period, or both", () => {
    const data = (complete: unknown) =>
      parseConfig({ ...minimal(), data: { ...minimal().data, complete } }, "/cfg/pipeline.json").data;
    expect(data({ marker: true }).complete).toEqual({ marker: "_SUCCESS" });
    expect(data({ marker: "_DONE", quietMinutes: 10 }).complete).toEqual({
      marker: "_DONE",
      quietMinutes: 10,
    });
    expect(data({ marker: false, quietMinutes: 2.5 }).complete).toEqual({ quietMinutes: 2.5 });
    expect(parseConfig(minimal(), "/cfg/pipeline.json").data.complete).toBeUndefined();
  });

  it.each([
    [{ complete: {} }, /^\/cfg\/pipeline.json: data.complete: expected "marker" .* or "quietMinutes"/],
    [{ complete: { marker: false } }, /data.complete: expected "marker"/],
    [
      { complete: { marker: "" } },
      /data.complete.marker: expected a non-empty file name, or true for "_SUCCESS"/,
    ],
    [
      { complete: { marker: "2026-12-06/_SUCCESS" } },
      /data.complete.marker: expected a file name, not a path: the marker is looked for in each folder/,
    ],
    [{ complete: { marker: "..\\_SUCCESS" } }, /data.complete.marker: expected a file name, not a path/],
    [
      { complete: { marker: ".." } },
      /data.complete.marker: expected true \(the file "_SUCCESS"\) or a marker file's name/,
    ],
    [{ complete: { marker: 1 } }, /data.complete.marker: expected true/],
    [{ complete: { quietMinutes: -5 } }, /data.complete.quietMinutes: expected a number > 0/],
    [{ complete: { quietMinutes: 0 } }, /data.complete.quietMinutes: expected a number > 0/],
    [{ complete: { quietMinutes: "10" } }, /data.complete.quietMinutes: expected number, got "10"/],
    [{ complete: { marker: true, quiet: 10 } }, /data.complete.quiet: unknown field/],
    [{ complete: true }, /data.complete: expected Object, got true/],
  ])("a bad data.complete is one line naming the field: %j", (patch, message) => {
    const line = errorOf({ ...minimal(), data: { ...minimal().data, ...patch } });
    expect(line).toMatch(message);
    expect(line).not.toContain("\n");
  });

  it.each([
    [{ data: undefined }, /^\/cfg\/pipeline.json: data: /],
    [{ evaluation: {} }, /^\/cfg\/pipeline.json: evaluation.holdout: /],
    [
      { gate: { floors: [{ task: "click", metric: "auc", min: "high" }] } },
      /gate.floors.0.min: expected number, got "high"/,
    ],
    [
      { gate: { floors: [{ task: "click", metric: "AUC", min: 0.6 }] } },
      /gate.floors.0.metric: expected one of auc/,
    ],
    [{ gate: { floors: [{ task: "click", metric: "auc" }] } }, /gate.floors.0: expected "min" or "max"/],
    [{ gate: { floors: [{ metric: "auc", min: 0.6 }] } }, /gate.floors.0: expected "task"/],
    [
      { gate: { changes: [{ task: "click", metric: "auc", direction: "up", maxDrop: 0.01 }] } },
      /gate.changes.0.direction: expected "higher" or "lower"/,
    ],
    [
      { gate: { changes: [{ task: "click", metric: "auc", direction: "higher" }] } },
      /gate.changes.0: expected "maxDrop" or "maxRatioDrop"/,
    ],
    [
      {
        gate: {
          changes: [
            { task: "click", metric: "accuracy", direction: "higher", maxDrop: 0.01, confidence: 0.95 },
          ],
        },
      },
      /gate.changes.0: "confidence" applies to auc, logloss, mse, mae, r2, ece and ndcg10 rules only/,
    ],
    [
      {
        gate: { changes: [{ task: "click", metric: "auc", direction: "higher", maxDrop: 0, confidence: 1 }] },
      },
      /gate.changes.0.confidence: expected a confidence in \[0.5, 1\)/,
    ],
    [{ gate: {} }, /gate: no rule configured/],
    [{ gate: { floors: [], changes: [] } }, /gate: no rule configured/],
    [
      { gate: { floors: [{ task: "click", metric: "auc", min: 0.6 }], size: {} } },
      /gate.size: expected "modelBytes"/,
    ],
    [
      { gate: { floors: [{ task: "click", metric: "auc", min: 0.6 }], infra: { manifestMaxBytes: 0 } } },
      /gate.infra.manifestMaxBytes: expected a positive integer/,
    ],
    [
      { gate: { floors: [{ task: "click", metric: "auc", min: 0.6 }], infra: { manifestBytes: 1 } } },
      /gate.infra/,
    ],
    [
      { gate: { floors: [{ task: "click", metric: "auc", min: 0.6 }], int8: { maxAucDrop: -1 } } },
      /gate.int8.maxAucDrop: expected a number >= 0/,
    ],
    [{ smoke: { url: "not a url" } }, /smoke.url: expected an absolute URL/],
    [{ smoke: { url: "https://x.dev", timeoutS: 0 } }, /smoke.timeoutS: expected a number > 0/],
    [
      { smoke: { url: "https://x.dev", abSalt: "x".repeat(257) } },
      /smoke.abSalt: expected at most 256 characters/,
    ],
    [{ publish: { pointer: "latest" } }, /publish.pointer: expected "current" or "challenger"/],
    [{ training: { epochs: 0 } }, /training.epochs: expected a positive integer/],
    [{ training: { arch: "mmoe", expertz: 3 } }, /training.expertz: /],
    [
      { evaluation: { holdout: "h.csv", newest: { rows: -3 } } },
      /evaluation.newest.rows: expected a positive integer/,
    ],
    [
      { export: { fusion: { weights: { click: 2e6 } } } },
      /export.fusion.weights.click: expected a number <= 1000000/,
    ],
    [{ drift: { warn: { psi: 0.3 } } }, /drift.warn.psi: 0.3 is above drift.stop.psi/],
    [{ registry: { local: {} } }, /registry.local.persistTo: required field missing/],
    [{ registry: { local: { persistTo: "s", buckett: "m" } } }, /registry.local.buckett: unknown field/],
    [{ registry: { remote: { bucket: "models" } } }, /registry.remote.namespaceId: required field missing/],
    [
      { registry: { remote: { bucket: "models", namespaceId: "mtrank-pointers" } } },
      /registry.remote.namespaceId: expected the namespace's id, 32 hex digits .*, not its title/,
    ],
    [
      { registry: { remote: { bucket: "Models_2026", namespaceId: "0f2ac74b498b48028cb68387c421e279" } } },
      /registry.remote.bucket: expected an R2 bucket name: 3 to 63 lowercase letters/,
    ],
    [{ registry: { local: { persistTo: "s" }, remote: {} } }, /registry: expected \{ "local"/],
    [{ training: { epochs: "3" } }, /training.epochs: expected number, got "3"/],
    [
      { training: { arch: "mmeo" } },
      /training.arch: expected one of single, shared-bottom, mmoe, ple, esmm, cross-attention/,
    ],
    [
      { evaluation: { holdout: "h.csv", newest: { rows: 3, hours: 2 } } },
      /evaluation.newest: expected \{ "rows"/,
    ],
  ])("a bad field is one line naming it: %j", (patch, message) => {
    const line = errorOf({ ...minimal(), ...patch });
    expect(line).toMatch(message);
    expect(line).not.toContain("\n");
  });

  it("checks task names and metric types against the spec", () => {
    const spec = parseSpec({
      format: "csv",
      features: [{ name: "x", type: "numeric" }],
      tasks: [
        { name: "click", type: "binary", column: "c" },
        { name: "dwell", type: "regression", column: "d" },
      ],
    });
    const check = (patch: object) => () =>
      checkConfigAgainstSpec(parseConfig({ ...minimal(), ...patch }, "/cfg/p.json"), spec);
    expect(check({})).not.toThrow();
    expect(check({ training: { earlyStop: "acu" } })).toThrow(
      /^\/cfg\/p.json: training.earlyStop: expected auto, auc, deviance, logloss or <metric>:<task>/,
    );
    expect(check({ training: { earlyStop: "auc:buy" } })).toThrow(/training.earlyStop: no task named "buy"/);
    expect(check({ training: { earlyStop: "r2:dwell" } })).not.toThrow();
    expect(check({ gate: { floors: [{ task: "buy", metric: "auc", min: 0.6 }] } })).toThrow(
      /gate.floors.0.task: no task named "buy" \(tasks: click, dwell\)/,
    );
    expect(check({ gate: { floors: [{ task: "dwell", metric: "auc", min: 0.6 }] } })).toThrow(
      /gate.floors.0.metric: auc does not apply to the regression task "dwell"/,
    );
    expect(check({ gate: { changes: [{ metric: "ndcg10", direction: "higher", maxDrop: 0 }] } })).toThrow(
      /gate.changes.0.metric: ndcg10 needs a spec with a group/,
    );
    expect(check({ export: { fusion: { weights: { buy: 1 } } } })).toThrow(
      /export.fusion.weights.buy: no task/,
    );
    expect(check({ training: { idDropout: { item: 0.1 } } })).toThrow(
      /training.idDropout.item: no feature named "item" \(categorical features: none\)/,
    );
    expect(check({ training: { idDropout: { x: 0.1 } } })).toThrow(
      /training.idDropout.x: "x" is a numeric feature; id dropout reads a categorical id as never seen/,
    );
  });

  it("passes training.idDropout on as train's --id-dropout, each share above 0 and at most 0.5", () => {
    const spec = parseSpec({
      format: "csv",
      features: [{ name: "item", type: "categorical" }],
      tasks: [{ name: "click", type: "binary", column: "c" }],
    });
    const config = parseConfig({ ...minimal(), training: { idDropout: { item: 0.1 } } }, "/cfg/p.json");
    expect(() => checkConfigAgainstSpec(config, spec)).not.toThrow();
    expect(config.training.idDropout).toEqual({ item: 0.1 });
    expect(() =>
      parseConfig({ ...minimal(), training: { idDropout: { item: 0.6 } } }, "/cfg/p.json"),
    ).toThrow(/training.idDropout.item: expected a share of rows at most 0.5/);
    expect(() => parseConfig({ ...minimal(), training: { idDropout: { item: 0 } } }, "/cfg/p.json")).toThrow(
      /training.idDropout.item: expected a number > 0/,
    );
  });

  it("refuses gate bounds that invert the gate or lie outside the metric's range, naming the field", () => {
    const gate = (g: object) => ({ ...minimal(), gate: g });
    const change = (rule: object) => gate({ changes: [{ task: "click", ...rule }] });
    expect(errorOf(change({ metric: "logloss", direction: "higher", maxDrop: 0 }))).toBe(
      "/cfg/pipeline.json: gate.changes.0.direction: lower logloss is better, not higher (the rule would bless a worse model)",
    );
    expect(errorOf(change({ metric: "auc", direction: "lower", maxDrop: 0 }))).toBe(
      "/cfg/pipeline.json: gate.changes.0.direction: higher auc is better, not lower (the rule would bless a worse model)",
    );
    expect(errorOf(change({ metric: "calibrationRatio", direction: "higher", maxDrop: 0.1 }))).toBe(
      "/cfg/pipeline.json: gate.changes.0.metric: calibrationRatio has no better direction (1 is ideal): bound it with a floor's min and max",
    );
    expect(errorOf(change({ metric: "auc", direction: "higher", maxDrop: 1.5 }))).toBe(
      "/cfg/pipeline.json: gate.changes.0.maxDrop: auc lies in [0, 1]: a drop bound of 1.5 is outside what it can move",
    );
    expect(errorOf(change({ metric: "ece", direction: "lower", maxDrop: -2 }))).toBe(
      "/cfg/pipeline.json: gate.changes.0.maxDrop: ece lies in [0, 1]: a drop bound of -2 is outside what it can move",
    );
    expect(errorOf(gate({ floors: [{ task: "click", metric: "auc", min: -5 }] }))).toBe(
      "/cfg/pipeline.json: gate.floors.0.min: auc lies in [0, 1]: -5 is outside it",
    );
    expect(errorOf(gate({ floors: [{ metric: "ndcg10", max: 2 }] }))).toBe(
      "/cfg/pipeline.json: gate.floors.0.max: ndcg10 lies in [0, 1]: 2 is outside it",
    );
    expect(errorOf(gate({ floors: [{ task: "click", metric: "logloss", max: -1 }] }))).toBe(
      "/cfg/pipeline.json: gate.floors.0.max: logloss lies in [0, ∞): -1 is outside it",
    );
    expect(
      errorOf(gate({ floors: [{ task: "click", metric: "auc", min: 0.6 }], int8: { maxAucDrop: 5 } })),
    ).toBe(
      "/cfg/pipeline.json: gate.int8.maxAucDrop: AUC lies in [0, 1]: a drop bound of 5 is outside what it can move",
    );
    // In range: accepted.
    expect(() =>
      parseConfig(change({ metric: "r2", direction: "higher", maxDrop: 0.5 }), "/cfg/p.json"),
    ).not.toThrow();
  });

  it("warns, without refusing, of settings that make the gate weak", () => {
    const c = parseConfig(
      {
        ...minimal(),
        gate: {
          floors: [
            { task: "click", metric: "logloss", min: 0.1 },
            { task: "click", metric: "auc", min: 0.6 },
          ],
          changes: [
            { task: "click", metric: "auc", direction: "higher", maxDrop: 1, confidence: 0.5 },
            { task: "click", metric: "logloss", direction: "lower", maxRatioDrop: 2 },
          ],
          infra: false,
        },
        lock: { ttlMinutes: 5 },
      },
      "/cfg/pipeline.json",
    );
    expect(c.warnings).toEqual([
      'gate.floors.0: only "min" on logloss, which is better lower: the floor bounds the good side',
      "gate.changes.0.maxDrop: 1 is the whole range of auc ([0, 1]): the rule passes any candidate",
      "gate.changes.0.confidence: 0.5 is below 0.8: the bound is about the drop measured once, not a guarantee",
      "gate.changes.1.maxRatioDrop: 2 allows a candidate 200% worse than the champion",
      "gate.infra: false: the candidate is published without loading it as the worker does (meant only to debug the gate)",
      "smoke: none: nothing checks that the worker serves the new model after the flip",
      "lock.ttlMinutes: 5 is under 30: a training fit longer than that can lose the lock (the run then does not publish)",
    ]);
    expect(parseConfig(minimal(), "/cfg/pipeline.json").warnings).toEqual([
      "gate.changes: none: once a champion exists, candidates are judged by floors alone, never against the model that serves",
      "smoke: none: nothing checks that the worker serves the new model after the flip",
    ]);
  });

  it("refuses a holdout the config puts in the day's data, naming both fields", () => {
    const paths = (source: string, holdout: string) => ({
      ...minimal(),
      data: { source, spec: "spec.json" },
      evaluation: { holdout },
    });
    const tail =
      "a candidate trained on the holdout would be judged on rows it has seen; keep evaluation.holdout out of data.source";
    expect(errorOf(paths("logs/holdout.csv", "./logs/../logs/holdout.csv"))).toBe(
      `/cfg/pipeline.json: evaluation.holdout: /cfg/logs/holdout.csv is data.source itself: ${tail}`,
    );
    expect(errorOf(paths("logs/", "logs/holdout.csv.gz"))).toBe(
      `/cfg/pipeline.json: evaluation.holdout: /cfg/logs/holdout.csv.gz lies in data.source's folder /cfg/logs, whose data files are the day's: ${tail}`,
    );
    expect(errorOf(paths("logs/*/part-*.csv", "logs/2026-12-06/part-holdout.csv"))).toBe(
      `/cfg/pipeline.json: evaluation.holdout: /cfg/logs/2026-12-06/part-holdout.csv matches data.source's glob /cfg/logs/*/part-*.csv: ${tail}`,
    );
    expect(errorOf(paths("/data/**/*.parquet", "/data/frozen/holdout.parquet"))).toMatch(
      /^\/cfg\/pipeline.json: evaluation.holdout: \/data\/frozen\/holdout.parquet matches data.source's glob/,
    );
    // The holdout read from S3 is not something the run can do; the URL would be taken for a path.
    expect(errorOf(paths("s3://logs/day/", "s3://logs/day/holdout.csv"))).toBe(
      "/cfg/pipeline.json: evaluation.holdout: s3://logs/day/holdout.csv is a URL; the holdout is a local file (download it once and name the file)",
    );
    // What the day's listing leaves out is no overlap: a subfolder, a name starting with "_" or
    // ".", a file without a data extension, a glob it does not match, an s3:// source.
    for (const [source, holdout] of [
      ["logs/", "logs/frozen/holdout.csv"],
      ["logs/", "logs/_holdout.csv"],
      ["logs/", "logs/.holdout.csv"],
      ["logs/", "logs/holdout.txt"],
      ["logs/*/part-*.csv", "logs/holdout.csv"],
      ["logs/*/part-*.csv", "logs/2026-12-06/_part-holdout.csv"],
      ["s3://logs/day/", "holdout.csv"],
      ["logs/day.csv", "holdout.csv"],
    ])
      expect(
        () => parseConfig(paths(source!, holdout!), "/cfg/pipeline.json"),
        `${source} ${holdout}`,
      ).not.toThrow();
  });

  it("a folder whose name holds glob characters is a folder, not a glob", async () => {
    const dir = await mkdtemp(join(tmpdir(), "mtrank-config-"));
    await mkdir(join(dir, "logs[1]"));
    const c = {
      ...minimal(),
      data: { source: "logs[1]", spec: "spec.json" },
      evaluation: { holdout: "logs1" },
    };
    // As a glob, logs[1] would match logs1; as the folder it is, it holds no file of that name.
    expect(() => parseConfig(c, join(dir, "pipeline.json"))).not.toThrow();
  });

  it("`mtrank pipeline run` refuses such a config in one line, before it opens the registry or reads data", async () => {
    const dir = await mkdtemp(join(tmpdir(), "mtrank-config-"));
    await mkdir(join(dir, "logs"));
    await writeFile(join(dir, "logs", "holdout.csv"), "a,b\n1,2\n");
    const config = join(dir, "pipeline.json");
    await writeFile(
      config,
      JSON.stringify({
        ...minimal(),
        data: { source: "logs", spec: "spec.json" },
        evaluation: { holdout: "logs/holdout.csv" },
      }),
    );
    const cli = spawnSync(process.execPath, ["bin/mtrank.js", "pipeline", "run", "--config", config], {
      encoding: "utf8",
      timeout: 60_000,
    });
    expect(cli.status, cli.stderr).toBe(1);
    expect(cli.stdout).toBe("");
    expect(cli.stderr.trim()).toBe(
      `error: ${config}: evaluation.holdout: ${join(dir, "logs", "holdout.csv")} lies in data.source's folder ${join(dir, "logs")}, whose data files are the day's: a candidate trained on the holdout would be judged on rows it has seen; keep evaluation.holdout out of data.source`,
    );
    // No run folder, no registry state: nothing was started.
    expect(existsSync(join(dir, "out"))).toBe(false);
    expect(existsSync(join(dir, ".wrangler"))).toBe(false);
  });

  it("loadConfig names an unreadable or non-JSON file", async () => {
    const dir = await mkdtemp(join(tmpdir(), "mtrank-config-"));
    await expect(loadConfig(join(dir, "missing.json"))).rejects.toThrow(
      /--config: cannot read .*missing.json \(ENOENT\)/,
    );
    await writeFile(join(dir, "bad.json"), "{ nope");
    await expect(loadConfig(join(dir, "bad.json"))).rejects.toThrow(/bad.json: not JSON/);
    await writeFile(join(dir, "ok.json"), JSON.stringify(minimal()));
    expect((await loadConfig(join(dir, "ok.json"))).data.spec).toBe(join(dir, "spec.json"));
  });
});
