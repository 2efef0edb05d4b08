/** scripts/check-layers.ts: an import that climbs a layer, a cycle or a file in no layer is found. */
import { describe, expect, it } from "vitest";
import {
  cycles,
  EDGE_LAYERS,
  importsOf,
  TRAINER_LAYERS,
  unlayeredFiles,
  upwardImports,
} from "../../scripts/check-layers.ts";

const edges = (file: string, source: string) => importsOf(file, source);

describe("check-layers", () => {
  it("resolves relative imports, type-only and multi-line ones included", () => {
    const source = [
      'import { a } from "../core/rng.ts";',
      'import type { B } from "./batch.ts";',
      "import {",
      "  c,",
      "  d,",
      '} from "../metrics/task-metrics.ts";',
      'import * as tf from "@tensorflow/tfjs";',
    ].join("\n");
    expect(edges("trainer/train/x.ts", source).map((e) => e.to)).toEqual([
      "trainer/core/rng.ts",
      "trainer/train/batch.ts",
      "trainer/metrics/task-metrics.ts",
    ]);
  });

  it("flags a trainer import that climbs a layer, and passes those that go down or stay level", () => {
    const found = upwardImports(
      [
        ...edges("trainer/train/a.ts", 'import { r } from "../report/svg-chart.ts";'),
        ...edges("trainer/models/b.ts", 'import type { G } from "../export/network-graph.ts";'),
        ...edges("trainer/train/c.ts", 'import { m } from "../metrics/task-metrics.ts";'),
        ...edges("trainer/workflows/d.ts", 'import { t } from "../train/train-network.ts";'),
        ...edges("trainer/export/e.ts", 'import { q } from "./quantize.ts";'),
        ...edges("trainer/core/f.ts", 'import { s } from "../../shared/spec.ts";'),
      ],
      TRAINER_LAYERS,
    );
    expect(found.map((f) => `${f.file} ${f.message}`)).toEqual([
      "trainer/train/a.ts imports trainer/report/svg-chart.ts from a layer above it",
      "trainer/models/b.ts imports trainer/export/network-graph.ts from a layer above it",
    ]);
  });

  it("keeps the CLIs on top and core just above shared/", () => {
    expect(TRAINER_LAYERS[0]).toEqual(["trainer/cli/"]);
    expect(TRAINER_LAYERS.at(-2)).toEqual(["trainer/core/"]);
    expect(TRAINER_LAYERS.at(-1)).toEqual(["shared/"]);
    expect(EDGE_LAYERS.at(-1)).toEqual(["shared/"]);
  });

  it("finds a cycle, type-only imports included", () => {
    const found = cycles([
      ...edges("trainer/train/a.ts", 'import type { B } from "./b.ts";'),
      ...edges("trainer/train/b.ts", 'import { a } from "./a.ts";'),
      ...edges("trainer/train/c.ts", 'import { a } from "./a.ts";'),
    ]);
    expect(found).toEqual([["trainer/train/a.ts", "trainer/train/b.ts"]]);
  });

  it("flags a file that no layer of its tree names; bench/ is outside the layered trees", () => {
    const found = unlayeredFiles([
      "trainer/somewhere/new.ts",
      "bench/timing.ts",
      "trainer/train/loss.ts",
      "edge/app.ts",
      "edge/elsewhere/x.ts",
    ]);
    expect(found.map((f) => f.file)).toEqual(["trainer/somewhere/new.ts", "edge/elsewhere/x.ts"]);
  });
});
