/** The manifest's default fusion: regression heads do not swamp a sum; export can set weights and mode. */
import { spawnSync } from "node:child_process";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import type { HeadInfo, ModelManifest } from "../../shared/manifest.ts";
import { ExportError, exportModelDir } from "../../trainer/export/export-model.ts";
import { fusionDefaults, keptFusion } from "../../trainer/export/fusion-defaults.ts";
import { runTraining } from "../../trainer/workflows/train-and-report.ts";

const click: HeadInfo = { name: "click", type: "binary", output: "click" };
const buy: HeadInfo = { name: "buy", type: "binary", output: "buy" };
const dwell: HeadInfo = { name: "dwell", type: "regression", output: "dwell", transform: "log1p" };

describe("keptFusion", () => {
  const earlier = { weights: { click: 1, buy: 4 }, mode: "product" as const };
  it("keeps the earlier weights and mode while the heads are the same; a choice wins", () => {
    expect(keptFusion([click, buy], earlier)).toEqual(earlier);
    expect(keptFusion([click, buy], earlier, { mode: "sum" })).toEqual({
      weights: earlier.weights,
      mode: "sum",
    });
    expect(keptFusion([click, buy], earlier, { weights: { click: 3 } })).toEqual({
      weights: { click: 3 },
      mode: "product",
    });
  });
  it("drops the earlier weights when the heads changed", () => {
    expect(keptFusion([click, buy, dwell], earlier)).toEqual({ mode: "product" });
    expect(keptFusion([click], earlier)).toEqual({ mode: "product" });
    expect(keptFusion([click, buy], undefined)).toEqual({});
  });
});

describe("fusionDefaults", () => {
  it("weighs binary heads 1 and a regression head beside them 0, in a sum", () => {
    expect(fusionDefaults([click, buy, dwell])).toEqual({
      weights: { click: 1, buy: 1, dwell: 0 },
      mode: "sum",
    });
  });

  it("weighs regression heads 1 when there is no binary head", () => {
    const spend: HeadInfo = { name: "spend", type: "regression", output: "spend", transform: "none" };
    expect(fusionDefaults([dwell, spend]).weights).toEqual({ dwell: 1, spend: 1 });
  });

  it("takes a chosen map whole (heads it leaves out get 0) and a chosen mode", () => {
    expect(fusionDefaults([click, buy, dwell], { weights: { buy: 4, dwell: 0.1 }, mode: "product" })).toEqual(
      {
        weights: { click: 0, buy: 4, dwell: 0.1 },
        mode: "product",
      },
    );
  });

  it("refuses a weight for a head the model does not have, naming it and the heads", () => {
    expect(() => fusionDefaults([click, dwell], { weights: { views: 1 } })).toThrow(ExportError);
    expect(() => fusionDefaults([click, dwell], { weights: { views: 1 } })).toThrow(
      'fusion weights: no head named "views" (heads: click, dwell)',
    );
  });

  it("refuses a weight the worker would refuse: negative, not finite, or over 1e6", () => {
    for (const w of [-1, Number.NaN, Number.POSITIVE_INFINITY, 1e6 + 1, 1e308])
      expect(() => fusionDefaults([click, buy], { weights: { click: w } })).toThrow(
        `fusion weights: click=${w} is not a number in [0, 1000000]`,
      );
    expect(fusionDefaults([click, buy], { weights: { click: 1e6 } }).weights.click).toBe(1e6);
  });

  it("refuses weights that are all 0: every candidate would score the same", () => {
    expect(() => fusionDefaults([click, dwell], { weights: { click: 0 } })).toThrow(
      "fusion weights: every head weighs 0, so every candidate would score the same; give one a weight above 0 (heads: click, dwell)",
    );
  });
});

describe("export", { timeout: 120_000 }, () => {
  let model: string;
  const manifest = async (): Promise<ModelManifest> =>
    JSON.parse(await readFile(join(model, "manifest.json"), "utf8")) as ModelManifest;

  beforeAll(async () => {
    const dir = await mkdtemp(join(tmpdir(), "mtrank-fusion-"));
    const lines = ["x,clicked,dwell_s"];
    for (let i = 0; i < 200; i++) lines.push(`${(i % 17) / 17},${i % 3 === 0 ? 1 : 0},${(i % 7) * 10}`);
    await writeFile(join(dir, "data.csv"), `${lines.join("\n")}\n`);
    await writeFile(
      join(dir, "spec.json"),
      JSON.stringify({
        format: "csv",
        features: [{ name: "x", type: "numeric" }],
        tasks: [
          { name: "click", type: "binary", column: "clicked" },
          { name: "dwell", type: "regression", column: "dwell_s", transform: "log1p" },
        ],
      }),
    );
    model = join(dir, "model");
    await runTraining({
      data: join(dir, "data.csv"),
      spec: join(dir, "spec.json"),
      arch: "shared-bottom",
      out: model,
      epochs: 1,
      seed: 3,
    });
  }, 120_000);

  it("writes the defaults into manifest.json, and the chosen weights and mode when given", async () => {
    await exportModelDir(model);
    expect((await manifest()).fusion.defaults).toEqual({ weights: { click: 1, dwell: 0 }, mode: "sum" });
    await exportModelDir(model, { fusion: { weights: { click: 1, dwell: 0.02 }, mode: "product" } });
    expect((await manifest()).fusion.defaults).toEqual({
      weights: { click: 1, dwell: 0.02 },
      mode: "product",
    });
  });

  it("a later export that names no weights or mode keeps the earlier export's (int8 re-export, pipeline)", async () => {
    await exportModelDir(model, { fusion: { weights: { click: 2, dwell: 0.5 }, mode: "product" } });
    await exportModelDir(model, { int8: true });
    expect((await manifest()).fusion.defaults).toEqual({
      weights: { click: 2, dwell: 0.5 },
      mode: "product",
    });
    await exportModelDir(model, { fusion: { mode: "sum" } });
    expect((await manifest()).fusion.defaults).toEqual({ weights: { click: 2, dwell: 0.5 }, mode: "sum" });
    await exportModelDir(model, { fusion: { weights: { click: 1 } } });
    expect((await manifest()).fusion.defaults).toEqual({ weights: { click: 1, dwell: 0 }, mode: "sum" });
  });

  it("CLI: --fusion-weights with an unknown head exits 1 with one line and leaves the manifest as it was", async () => {
    await exportModelDir(model);
    const before = await readFile(join(model, "manifest.json"), "utf8");
    const run = spawnSync(
      "node_modules/.bin/tsx",
      ["trainer/cli/export.ts", "--model", model, "--fusion-weights", "click=1,views=2"],
      { encoding: "utf8", timeout: 60_000 },
    );
    expect(run.status).toBe(1);
    expect(run.stderr.trim().split("\n")).toHaveLength(1);
    expect(run.stderr).toContain('no head named "views"');
    expect(await readFile(join(model, "manifest.json"), "utf8")).toBe(before);

    const ok = spawnSync(
      "node_modules/.bin/tsx",
      ["trainer/cli/export.ts", "--model", model, "--fusion-weights", "dwell=1", "--fusion", "product"],
      { encoding: "utf8", timeout: 60_000 },
    );
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.stdout).toContain("default fusion product of click 0, dwell 1");
    expect((await manifest()).fusion.defaults).toEqual({ weights: { click: 0, dwell: 1 }, mode: "product" });
  });
});
