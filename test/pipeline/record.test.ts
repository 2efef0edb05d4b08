/** The run record (trainer/pipeline/record.ts): JSON fields and the self-contained HTML page. */
import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  newRunId,
  RECORD_FORMAT,
  type RunRecord,
  recordLine,
  renderRecordHtml,
  writeRecordFiles,
} from "../../trainer/pipeline/record.ts";
import { recordPrefixes } from "../../trainer/pipeline/registry/history.ts";

const PREFIX = `models/${"a".repeat(64)}/`;
const OLD = `models/${"b".repeat(64)}/`;

function record(): RunRecord {
  const evaluation = (auc: number) => ({
    rows: 500,
    tasks: { click: { auc, logloss: 0.4, ece: 0.01, count: 500 } },
    ranking: { ndcg10: 0.6 },
    reliability: {
      click: [
        { meanPredicted: 0.1, observedRate: 0.12 },
        { meanPredicted: 0.3, observedRate: 0.28 },
      ],
    },
  });
  return {
    format: RECORD_FORMAT,
    kind: "run",
    runId: newRunId(),
    startedAt: "2026-01-02T03:04:05.678Z",
    finishedAt: "2026-01-02T03:10:00.000Z",
    outcome: "published",
    exitCode: 0,
    reason: "blessed: 3 rules passed",
    registry: "local:/tmp/state",
    pointer: "models/current",
    dryRun: false,
    config: { file: "/cfg/pipeline.json", sha256: "c".repeat(64) },
    data: {
      files: [{ path: "/data/day1.csv", bytes: 1234, sha256: "d".repeat(64) }],
      rowsRead: 1000,
      rowsSkipped: 2,
      skipped: { "bad value": 2 },
    },
    spec: { path: "/cfg/spec.json", sha256: "e".repeat(64), championSha256: "e".repeat(64) },
    drift: {
      level: "warn",
      findings: [{ subject: "feature:<age>", measure: "psi", value: 0.12, level: "warn" }],
    },
    training: {
      mode: "warm-start",
      why: "from the champion",
      arch: "mmoe",
      trainRows: 900,
      validRows: 100,
      bestEpoch: 2,
      seconds: 12.5,
      validation: {},
    },
    candidate: { id: "mmoe-new", version: "2026-01-02", sizes: { modelBytes: 5000, int8Bytes: 2000 } },
    champion: { id: "mmoe-old", version: "2026-01-01", prefix: OLD },
    metrics: {
      holdout: { path: "/cfg/holdout.csv", candidate: evaluation(0.71), champion: evaluation(0.7) },
      holdoutInt8: { candidate: evaluation(0.709) },
      newest: { description: "last 100 rows", candidate: evaluation(0.72), champion: evaluation(0.69) },
    },
    gate: {
      blessed: true,
      results: [
        { rule: "floor click auc >= 0.6", passed: true, value: 0.71, threshold: 0.6, detail: "0.71 >= 0.6" },
      ],
    },
    published: {
      prefix: PREFIX,
      id: "mmoe-new",
      version: "2026-01-02",
      files: {},
      pointer: "models/current",
      previous: OLD,
    },
    smoke: { passed: true, detail: "serves", polls: 2, seconds: 3 },
    steps: [{ step: "train", seconds: 12.5, detail: "2 epochs", ok: true }],
  };
}

describe("run record", () => {
  it("run ids are random and key-safe", () => {
    expect(newRunId()).toMatch(/^[0-9a-f]{8}$/);
    expect(newRunId()).not.toBe(newRunId());
  });

  it("writes record.json with every field, and the models gc must keep", async () => {
    const dir = await mkdtemp(join(tmpdir(), "mtrank-record-"));
    const paths = await writeRecordFiles(dir, record());
    const json = JSON.parse(await readFile(paths.json, "utf8")) as RunRecord;
    expect(Object.keys(json)).toEqual(
      expect.arrayContaining([
        "runId",
        "startedAt",
        "finishedAt",
        "data",
        "spec",
        "drift",
        "metrics",
        "gate",
        "outcome",
        "published",
        "smoke",
        "steps",
      ]),
    );
    expect(json.data!.files[0]).toEqual({ path: "/data/day1.csv", bytes: 1234, sha256: "d".repeat(64) });
    expect(json.metrics!.holdout.candidate!.tasks.click!.auc).toBe(0.71);
    expect(json.metrics!.holdout.champion!.tasks.click!.auc).toBe(0.7);
    expect(json.gate!.results[0]).toMatchObject({ threshold: 0.6, value: 0.71 });
    expect(recordPrefixes(json)).toEqual([PREFIX, OLD]);
    expect(recordLine(json)).toMatch(/run {2}published {2}mmoe-new 2026-01-02 \(models\/a+\/\)/);
  });

  it("the page is self-contained and sets candidate beside champion", () => {
    const html = renderRecordHtml(record());
    expect(html).not.toMatch(/<script|<link|src=|href=|url\(/);
    expect(html).toContain("Candidate against champion");
    expect(html).toMatch(/0\.7100<\/td><td>0\.7000<\/td><td class="better">\+0\.0100/);
    expect(html).toContain("feature:&#60;age&#62;"); // escaped
    expect(html).toContain("<svg");
    expect(html).toContain("floor click auc &#62;= 0.6");
  });

  it("a failed run without metrics still renders", () => {
    const { metrics: _m, gate: _g, published: _p, smoke: _s, ...rest } = record();
    const html = renderRecordHtml({
      ...rest,
      outcome: "failed",
      exitCode: 1,
      reason: "training: loss is NaN",
    });
    expect(html).toContain("training: loss is NaN");
    expect(html).toContain("failed");
  });
});
