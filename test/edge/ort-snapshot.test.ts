/**
 * Inside workerd the bundled ORT snapshot (edge/runtime/ort-snapshot.ts) fits the wasm module
 * wrangler compiled and stands in for ORT's initialisation; test/runtime/ort-snapshot.test.ts
 * checks in Node that scores do not change, and features.test.ts checks the worker's scores
 * against Node's.
 */
import { describe, expect, it } from "vitest";
import { createSession, ortSnapshotUse } from "../../edge/runtime/ort.ts";
import model from "../../fixtures/model/model.onnx";

describe("ORT snapshot in workerd", () => {
  it("is applied when the runtime starts", async () => {
    const session = await createSession(model);
    expect(session.outputNames.length).toBeGreaterThan(0);
    expect(ortSnapshotUse()).toBe("applied");
  });
});
