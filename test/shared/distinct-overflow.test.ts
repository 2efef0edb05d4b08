/** A categorical feature with more distinct values than the encoder tracks is hashed, and says so. */
import { describe, expect, it } from "vitest";
import { compileEncoder } from "../../shared/encoder/encode.ts";
import { DEFAULT_FIT_OPTIONS, OVERFLOW_HASH_BUCKETS, startFit } from "../../shared/encoder/fit.ts";
import { RESERVED_IDS } from "../../shared/encoder/state.ts";
import { parseSpec } from "../../shared/spec.ts";

const spec = parseSpec({
  format: "csv",
  features: [
    { name: "user", type: "categorical" },
    { name: "device", type: "categorical" },
  ],
  tasks: [{ name: "y", type: "binary", column: "y" }],
});

describe("maxDistinct", () => {
  it("hashes only the feature that outgrew it, into OVERFLOW_HASH_BUCKETS, and reports it", () => {
    const fit = startFit(spec, { ...DEFAULT_FIT_OPTIONS, maxDistinct: 50 });
    for (let i = 0; i < 500; i++) fit.add({ user: `u${i}`, device: i % 2 ? "ios" : "android" });
    const state = fit.finish();
    expect(fit.hashed()).toEqual(["user"]);
    const [user, device] = state.features;
    expect(user).toMatchObject({ kind: "categorical", hashBuckets: OVERFLOW_HASH_BUCKETS });
    expect(user).not.toHaveProperty("vocab");
    expect(device).toMatchObject({ kind: "categorical", vocab: ["android", "ios"] });
    expect(state.vocabSize).toBe(RESERVED_IDS + OVERFLOW_HASH_BUCKETS + RESERVED_IDS + 2);
    // Hashed ids stay inside the feature's block, and an unseen user still gets a bucket, not OOV.
    const { ids } = compileEncoder(state).encodeRows([
      { user: "u7", device: "ios" },
      { user: "never-seen", device: "ios" },
    ]);
    for (const id of [ids[0]!, ids[2]!]) {
      expect(id).toBeGreaterThanOrEqual(RESERVED_IDS);
      expect(id).toBeLessThan(RESERVED_IDS + OVERFLOW_HASH_BUCKETS);
    }
  });

  it("keeps a vocabulary below the limit", () => {
    const fit = startFit(spec);
    for (let i = 0; i < 500; i++) fit.add({ user: `u${i % 40}`, device: "ios" });
    expect(fit.hashed()).toEqual([]);
    expect(fit.finish().features[0]).toHaveProperty("vocab");
  });
});
