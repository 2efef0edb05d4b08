/**
 * MMoE's gates exported side by side (gatedMixturesOnnx): one product for every task's gate, one
 * batched mixture, a Gather per task. Each task must still get its own gate's mixture, in head
 * order, for one head (the plain path) and for several.
 */
import * as tf from "@tensorflow/tfjs";
import { Tensor } from "onnxruntime-web";
import { beforeAll, describe, expect, it } from "vitest";
import { createGraph } from "../../trainer/core/onnx-graph.ts";
import { openSession } from "../../trainer/export/onnx-session.ts";
import { mmoe } from "../../trainer/models/mmoe.ts";
import { readWeights } from "../../trainer/models/network.ts";
import { DEFAULT_ARCH_OPTIONS, type ModelShape } from "../../trainer/models/types.ts";
import { selectBackend } from "../../trainer/train/backend.ts";

const N = 64;
const WIDTH = 12;
const OPTIONS = { ...DEFAULT_ARCH_OPTIONS, experts: 3, expertSizes: [8, 6], tower: [4] };

beforeAll(async () => {
  await selectBackend("cpu");
});

describe.each([1, 2, 3])("MMoE ONNX with %i head(s)", (heads) => {
  it("gives each head the tfjs logits of its own gate's mixture (max |Δ| <= 1e-5)", async () => {
    const shape: ModelShape = {
      inputWidth: WIDTH,
      heads: Array.from({ length: heads }, (_, t) => ({ name: `task${t}`, type: "binary" as const })),
    };
    const params = mmoe.init(shape, OPTIONS, 9);
    // Gates far from uniform, different per task and per row (they start at zero: uniform), so a
    // swapped gate, or one that ignored its input, changes the outputs.
    for (let t = 0; t < heads; t++) {
      const bias = params[`gate_task${t}/bias`]!;
      bias.assign(tf.tensor1d(Array.from({ length: OPTIONS.experts }, (_, e) => (e === t % 3 ? 3 : -2))));
      const kernel = params[`gate_task${t}/kernel`]!;
      kernel.assign(tf.randomNormal(kernel.shape, 0, 0.5, "float32", 20 + t));
    }
    const x = tf.randomNormal([N, WIDTH], 0, 1, "float32", 4) as tf.Tensor2D;
    const expected = mmoe.forward(params, x, shape);

    const g = createGraph("gated-mixtures");
    const input = g.input("x", "float32", ["n", WIDTH]);
    const logits = mmoe.toOnnx(g, readWeights(params), input, shape);
    for (const head of shape.heads) g.output(logits[head.name]!, "float32", ["n", 1]);
    const session = await openSession(g.toBytes({}));
    const out = await session.run({ x: new Tensor("float32", x.dataSync() as Float32Array, [N, WIDTH]) });

    shape.heads.forEach((head) => {
      const got = out[logits[head.name]!]!.data as Float32Array;
      const want = expected[head.name]!.dataSync();
      let max = 0;
      for (let i = 0; i < N; i++) max = Math.max(max, Math.abs(got[i]! - want[i]!));
      expect(max, head.name).toBeLessThanOrEqual(1e-5);
    });
    if (heads > 1) {
      // The heads differ, or the check could not tell one gate from another.
      const a = expected.task0!.dataSync();
      const b = expected.task1!.dataSync();
      expect(Math.max(...a.map((v, i) => Math.abs(v - b[i]!)))).toBeGreaterThan(1e-3);
    }
    tf.dispose([...Object.values(params), x, ...Object.values(expected)]);
  });
});
