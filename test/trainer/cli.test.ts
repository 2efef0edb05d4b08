/** CLI contract: bad input exits non-zero with one readable line. */
import { spawnSync } from "node:child_process";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadTrainedModel } from "../../trainer/artifact/trained-model.ts";

function run(script: string, args: string[]): { status: number | null; stderr: string } {
  const result = spawnSync("node_modules/.bin/tsx", [script, ...args], { encoding: "utf8", timeout: 60_000 });
  return { status: result.status, stderr: result.stderr };
}

const CRITEO = [
  "--data",
  "fixtures/real-logs/criteo_sample.csv",
  "--spec",
  "fixtures/specs/criteo.json",
  "--out",
  "/tmp/mtrank-never",
];

// Each case spawns tsx (2-5 s on a loaded 2-core machine), beyond vitest's 5 s default.
describe("train CLI", { timeout: 60_000 }, () => {
  it("rejects an unknown architecture with one line", () => {
    const { status, stderr } = run("trainer/cli/train.ts", [...CRITEO, "--arch", "nope"]);
    expect(status).toBe(1);
    expect(stderr.trim().split("\n")).toHaveLength(1);
    expect(stderr).toMatch(/--arch: unknown architecture "nope"/);
  });

  it("names a missing spec file", () => {
    const { status, stderr } = run("trainer/cli/train.ts", [
      "--data",
      "x.csv",
      "--spec",
      "/nonexistent.json",
      "--out",
      "/tmp/x",
    ]);
    expect(status).toBe(1);
    expect(stderr).toMatch(/--spec: cannot read \/nonexistent\.json/);
  });

  it("rejects malformed layer sizes, naming the flag", () => {
    const { status, stderr } = run("trainer/cli/train.ts", [...CRITEO, "--expert-sizes", "64,x"]);
    expect(status).toBe(1);
    expect(stderr).toMatch(/--expert-sizes.*expected layer sizes like 64,32, got "64,x"/);
  });

  it("sizes the network from --experts, --expert-sizes and --tower", async () => {
    const out = await mkdtemp(join(tmpdir(), "mtrank-arch-flags-"));
    const args = [...CRITEO.slice(0, 4), "--out", out, "--arch", "mmoe", "--epochs", "1", "--no-export"];
    const { status, stderr } = run("trainer/cli/train.ts", [
      ...args,
      ...["--experts", "2", "--expert-sizes", "16", "--tower", "8"],
    ]);
    expect(status, stderr).toBe(0);
    const model = await loadTrainedModel(out);
    expect(model.config.options).toMatchObject({ experts: 2, expertSizes: [16], tower: [8] });
    const experts = Object.keys(model.weights).filter((k) => /^expert_\d+\/0\/kernel$/.test(k));
    expect(experts.sort()).toEqual(["expert_0/0/kernel", "expert_1/0/kernel"]);
    expect(model.weights["expert_0/0/kernel"]!.shape[1]).toBe(16);
  });

  it("stops --patience epochs after the best one, and records the rule", async () => {
    const out = await mkdtemp(join(tmpdir(), "mtrank-patience-"));
    const args = [...CRITEO.slice(0, 4), "--out", out, "--epochs", "8", "--no-export"];
    const { status, stderr } = run("trainer/cli/train.ts", [
      ...args,
      "--patience",
      "1",
      "--learning-rate",
      "0.05",
    ]);
    expect(status, stderr).toBe(0);
    const { training } = await loadTrainedModel(out);
    expect(training.patience).toBe(1);
    // 100 rows at a high learning rate overfit at once: the run must stop before its last epoch.
    expect(training.epochs).toBeLessThan(8);
    expect(training.epochs).toBe(training.bestEpoch + 1);
    expect(run("trainer/cli/train.ts", [...CRITEO, "--patience", "0"]).stderr).toMatch(/--patience/);
    expect(run("trainer/cli/cv.ts", [...CRITEO.slice(0, 4), "--patience", "0"]).stderr).toMatch(/--patience/);
  });

  it("rejects a task weight for an unknown task", () => {
    const { status, stderr } = run("trainer/cli/train.ts", [...CRITEO, "--task-weights", "buy=2"]);
    expect(status).toBe(1);
    expect(stderr).toMatch(/--task-weights: no task named "buy"/);
  });

  it("rejects task weights that are all 0, and an --out that is a file, before training", () => {
    const zero = run("trainer/cli/train.ts", [...CRITEO, "--task-weights", "click=0"]);
    expect(zero.status).toBe(1);
    expect(zero.stderr).toMatch(/--task-weights: every task weighs 0/);
    const file = run("trainer/cli/train.ts", [...CRITEO.slice(0, -1), "package.json"]);
    expect(file.status).toBe(1);
    expect(file.stderr.trim()).toBe("error: --out: package.json is a file; name a model directory");
  });

  it("warns of a binary task with few positives and of a constant number, and still trains", async () => {
    const dir = await mkdtemp(join(tmpdir(), "mtrank-few-"));
    const lines = ["x,k,y"];
    for (let i = 0; i < 400; i++) lines.push(`${i % 17},3,${i % 80 === 0 ? 1 : 0}`);
    await writeFile(join(dir, "few.csv"), `${lines.join("\n")}\n`);
    const spec = {
      format: "csv",
      features: [
        { name: "x", type: "numeric" },
        { name: "k", type: "numeric" },
      ],
      tasks: [{ name: "buy", type: "binary", column: "y" }],
    };
    await writeFile(join(dir, "spec.json"), JSON.stringify(spec));
    const args = ["--data", join(dir, "few.csv"), "--spec", join(dir, "spec.json"), "--out", join(dir, "m")];
    const { status, stderr } = run("trainer/cli/train.ts", [...args, "--epochs", "1", "--no-export"]);
    expect(status, stderr).toBe(0);
    expect(stderr).toMatch(/warning: binary tasks with fewer than 20 positive training rows .*: buy 5/);
    expect(stderr).toMatch(/warning: numeric features without variation .*: k \(one value, 3\)/);
  });

  it("export refuses a directory without a trained model", () => {
    const { status, stderr } = run("trainer/cli/export.ts", ["--model", "/tmp"]);
    expect(status).toBe(1);
    expect(stderr).toMatch(/--model: \/tmp holds no trained model/);
  });

  it.each([
    ["trainer/cli/train.ts", [...CRITEO, "--epochs", "x"], /--epochs <n>' argument 'x' is invalid/],
    ["trainer/cli/simulate.ts", ["--users", "-3"], /--users/],
    ["trainer/cli/pipeline.ts", ["history", "--limit", "0"], /--limit <n>' argument '0' is invalid/],
    ["trainer/cli/pipeline.ts", ["gc"], /required option '--keep <n>' not specified/],
  ])("%s: a bad option value is one line, without the usage", (script, args, message) => {
    const { status, stderr } = run(script, args as string[]);
    expect(status).toBe(1);
    expect(stderr).toMatch(message);
    expect(stderr.trim().split("\n")).toHaveLength(1);
  });
});
