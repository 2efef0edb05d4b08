/**
 * Settings are read on every request; a bad one is logged once per isolate (per catalog) and per
 * distinct value, not on every request.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createApp } from "../../edge/app.ts";
import modelBytes from "../../fixtures/model/model.onnx";
import { logLines } from "./log-lines.ts";
import { backgroundWork, bindings, POINTER } from "./r2-store.ts";
import { candidates, manifest, postRerank, rerankBody, user } from "./requests.ts";

const log = logLines(() => env.TEST_POINTERS.delete(POINTER));

const invalid = () => log.events("config.invalid").map((line) => String(line.error));

describe("config.invalid", () => {
  it("each bad setting is logged once, however many requests read it; a new bad value is logged again", async () => {
    const app = createApp({ manifest, model: modelBytes });
    const background = backgroundWork();
    const { binding } = bindings("0");
    Object.assign(binding, {
      MTRANK_CHALLENGER_SHARE: "150",
      MTRANK_MODEL_WEIGHTS: "fp16",
      MTRANK_MODEL_REFRESH_S: "soon",
      MTRANK_MODEL_MAX_BYTES: "-1",
      MTRANK_MANIFEST_MAX_BYTES: "lots",
    });
    const rerank = async (id: string) => {
      const res = await postRerank(
        rerankBody({ user: { ...user, id }, candidates: candidates(3) }),
        async (r) => app.fetch(r, binding, background.ctx),
      );
      expect(res.status).toBe(200);
      await background.settle();
    };
    for (const user of ["u1", "u2", "u3"]) await rerank(user);
    const names = [
      "MTRANK_CHALLENGER_SHARE",
      "MTRANK_MODEL_WEIGHTS",
      "MTRANK_MODEL_REFRESH_S",
      "MTRANK_MODEL_MAX_BYTES",
      "MTRANK_MANIFEST_MAX_BYTES",
    ];
    expect(
      invalid()
        .map((error) => names.find((name) => error.includes(name)))
        .sort(),
    ).toEqual([...names].sort());

    binding.MTRANK_CHALLENGER_SHARE = "200";
    await rerank("u4");
    await rerank("u5");
    expect(invalid()).toHaveLength(names.length + 1);
    expect(invalid().at(-1)).toMatch(/MTRANK_CHALLENGER_SHARE must be a number in \[0, 100\], got "200"/);
  });
});
