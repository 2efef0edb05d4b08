/** export --int8 --data: the manifest reports each task's AUC drop, as onnxruntime measures it. */
import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { compileEncoder } from "../../shared/encoder/encode.ts";
import { auc } from "../../trainer/core/metrics.ts";
import { loadDataset } from "../../trainer/data/load-dataset.ts";
import { readSpecFile } from "../../trainer/data/read-spec.ts";
import { exportModelDir } from "../../trainer/export/export-model.ts";
import { INT8_AUC_CHUNK } from "../../trainer/export/int8-auc.ts";
import { openSession, runHeads } from "../../trainer/export/onnx-session.ts";
import { writeSimulation } from "../../trainer/simulate/simulator.ts";
import { selectBackend } from "../../trainer/train/backend.ts";
import { runTraining } from "../../trainer/workflows/train-and-report.ts";

describe("export --int8 --data", () => {
  it("records float32 − int8 AUC per binary head over the file's rows", async () => {
    await selectBackend("cpu");
    const work = await mkdtemp(join(tmpdir(), "mtrank-int8-auc-"));
    const sim = writeSimulation(join(work, "sim"), { seed: 3, users: 200, items: 150, requests: 600 });
    const dir = join(work, "model");
    await runTraining({ data: sim.dataPath, spec: sim.specPath, arch: "mmoe", out: dir, epochs: 1, seed: 3 });
    const spec = await readSpecFile(sim.specPath);
    const { manifest } = await exportModelDir(dir, {
      int8: true,
      int8Evaluation: { data: sim.dataPath, spec },
    });
    const q = manifest.quantization!;
    expect(q.aucRows).toBe(6000);
    expect(Object.keys(q.aucDrop!).sort()).toEqual(["click", "purchase"]);
    // The same figure computed here from both files, in the same batches (int8 outputs depend a
    // little on which rows share a batch: one activation scale per call).
    const data = await loadDataset(sim.dataPath, spec);
    const encoder = compileEncoder(manifest.features);
    const score = async (file: string) => {
      const session = await openSession(await readFile(join(dir, file)));
      const out = new Float32Array(data.rows.length);
      for (let start = 0; start < data.rows.length; start += INT8_AUC_CHUNK) {
        const batch = encoder.encodeRows(data.rows.slice(start, start + INT8_AUC_CHUNK));
        out.set((await runHeads(session, manifest, batch)).click!, start);
      }
      return out;
    };
    const labels = data.labels.click!;
    const drop = auc(labels, await score("model.onnx")) - auc(labels, await score("model.int8.onnx"));
    expect(q.aucDrop!.click).toBeCloseTo(drop, 9);
    for (const drop of Object.values(q.aucDrop!)) expect(Math.abs(drop)).toBeLessThan(0.002);
  }, 120_000);
});
