/**
 * Small simulated days for pipeline runs against an in-memory registry: a tiny network, no infra
 * check, a few seconds a run.
 */
import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseConfig } from "../../trainer/pipeline/config.ts";
import { type SimRow, simulate, toCsv } from "../../trainer/simulate/simulator.ts";

/**
 * A config over `dir`, training on `source`; `patch` replaces top-level fields, `data` adds to
 * the data section (`complete`, `maxBadRows`).
 */
export function smallConfig(
  dir: string,
  source: string,
  patch: Record<string, unknown> = {},
  data: Record<string, unknown> = {},
) {
  return parseConfig(
    {
      data: { source, spec: "spec.json", ...data },
      training: { arch: "shared-bottom", epochs: 2, options: { bottom: [16], tower: [8], cross: 0 } },
      evaluation: { holdout: "holdout.csv" },
      // The days are random parts of one log: id-like features move by chance alone.
      drift: { warn: { psi: 2, js: 1, unseen: 1, rate: 1 }, stop: { psi: 5, js: 1, unseen: 1, rate: 1 } },
      gate: {
        floors: [{ task: "click", metric: "auc", min: 0 }],
        changes: [{ task: "click", metric: "auc", direction: "higher", maxDrop: 1 }],
        infra: false,
      },
      registry: { local: { persistTo: "state" } },
      ...patch,
    },
    join(dir, "pipeline.json"),
  );
}

/**
 * A temporary folder holding day1 and day2 (3,000 rows each), holdout.csv (3,000 more) and
 * spec.json, all from one simulated log; and the log's rows, for a test's own days.
 */
export async function smallDays(prefix: string): Promise<{ dir: string; rows: SimRow[] }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const { rows, spec } = simulate({ seed: 7, users: 300, items: 200, requests: 1200 });
  await mkdir(join(dir, "day1"));
  await mkdir(join(dir, "day2"));
  await writeFile(join(dir, "day1", "part-0.csv"), toCsv(rows.slice(0, 3000)));
  await writeFile(join(dir, "day2", "part-0.csv"), toCsv(rows.slice(3000, 6000)));
  await writeFile(join(dir, "holdout.csv"), toCsv(rows.slice(6000, 9000)));
  await writeFile(join(dir, "spec.json"), JSON.stringify(spec));
  return { dir, rows };
}
