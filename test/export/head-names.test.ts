/**
 * A head's graph output carries the head's name in every graph form, whatever the task is
 * called: the int8 builders name their nodes "a", "b", "y", "w", "s"…, the float32 graph "mul",
 * "sigmoid", "scale"…, and a head named like one of them used to come out as "b_15", so the
 * manifest named an output the graph did not have (the threshold world's tasks "a" and "b").
 */
import { describe, expect, it } from "vitest";
import type { TrainedModel } from "../../trainer/artifact/trained-model.ts";
import { maxAbsDiff } from "../../trainer/core/metrics.ts";
import { buildFactorisedOnnx, buildOnnx } from "../../trainer/export/export-model.ts";
import { factorisedLayout } from "../../trainer/export/factorised-layout.ts";
import { openSession, runFactorisedHeads, runHeads } from "../../trainer/export/onnx-session.ts";
import { probeBatch, requestProbeBatch } from "../../trainer/export/probe-batch.ts";
import type { NetworkConfig } from "../../trainer/models/network.ts";
import { syntheticModel } from "../fixtures/synthetic-model.ts";

const NAMES = ["a", "b", "y", "w", "s", "mul", "sigmoid", "scale"];

function model(arch: string, cross: number, names = NAMES): Promise<TrainedModel> {
  const heads: NetworkConfig["heads"] = names.map((name, i) => ({
    name,
    type: "binary",
    // Calibrated heads add the "scale" and "shift" initializers before their output.
    ...(i % 2 === 0 ? { calibration: { scale: 1.5, shift: -0.2 } } : {}),
  }));
  return syntheticModel({
    arch,
    features: [
      { name: "u", side: "user", ids: 30 },
      { name: "x", side: "user" },
      { name: "i", side: "item", ids: 40 },
      { name: "p", side: "item", buckets: 3 },
    ],
    options: { cross, experts: 2, expertSizes: [8], tower: [4], bottom: [8] },
    heads,
  });
}

describe("graph outputs are named after their heads", () => {
  it.each([
    "mmoe",
    "shared-bottom",
  ])("%s: float32, int8 (integer and qdq) and factorised graphs", async (arch) => {
    const trained = await model(arch, 0);
    const batch = probeBatch(trained.encoder, 16, 3);
    const float = buildOnnx(trained, "float32");
    const reference = await runHeads(await openSession(float.bytes), float.manifest, batch);
    for (const [weights, form] of [
      ["float32", undefined],
      ["int8", "integer"],
      ["int8", "qdq"],
    ] as const) {
      const built = buildOnnx(trained, weights, form);
      const session = await openSession(built.bytes);
      expect([...session.outputNames].sort(), `${weights} ${form ?? ""}`).toEqual([...NAMES].sort());
      const out = await runHeads(session, built.manifest, batch);
      for (const name of NAMES) expect(maxAbsDiff(out[name]!, reference[name]!)).toBeLessThan(0.05);
    }
    const layout = factorisedLayout(trained.encoder);
    for (const weights of ["float32", "int8"] as const) {
      const f = buildFactorisedOnnx(trained, layout, weights);
      const session = await openSession(f.bytes);
      expect([...session.outputNames].sort()).toEqual([...NAMES].sort());
      const request = requestProbeBatch(trained.encoder, 8, 5);
      const plain = await runHeads(await openSession(float.bytes), float.manifest, request);
      const split = await runFactorisedHeads(
        session,
        { ...float.manifest, factorised: { file: "f.onnx", inputs: f.inputs, ...layout } },
        request,
      );
      for (const name of NAMES) expect(maxAbsDiff(split[name]!, plain[name]!)).toBeLessThan(0.05);
    }
  });

  it("with cross layers (their own short names) too", async () => {
    const trained = await model("mmoe", 2);
    for (const form of ["integer", "qdq"] as const) {
      const session = await openSession(buildOnnx(trained, "int8", form).bytes);
      expect([...session.outputNames].sort()).toEqual([...NAMES].sort());
    }
  });

  it("refuses a head named like a graph input, naming it", async () => {
    const trained = await model("mmoe", 0, ["dense", "click"]);
    expect(() => buildOnnx(trained, "float32")).toThrow(/output "dense" has the name of a graph input/);
  });
});
