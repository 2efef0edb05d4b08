/**
 * Train/serve parity inside workerd: the shared encoder gives exactly the encoding recorded in
 * fixtures/encoder/encoder-fixture.json (written by Node), and the request path (user/context
 * once, item per candidate) gives the same rows as the flat path the trainer uses.
 */
import { describe, expect, it } from "vitest";
import fixtureJson from "../../fixtures/encoder/encoder-fixture.json";
import { compileEncoder, type FeatureValues } from "../../shared/encoder/encode.ts";
import type { EncoderState } from "../../shared/encoder/state.ts";

const fixture = fixtureJson as unknown as {
  state: EncoderState;
  rows: FeatureValues[];
  expected: { dense: number[]; ids: number[] };
};

describe("encoder parity in workerd", () => {
  it("runs in workerd", () => {
    expect(navigator.userAgent).toBe("Cloudflare-Workers");
  });

  it("encodeRows matches the Node fixture (ids exact, dense Float32-exact)", () => {
    const batch = compileEncoder(fixture.state).encodeRows(fixture.rows);
    expect(batch.rows).toBe(fixture.rows.length);
    expect(Array.from(batch.ids)).toEqual(fixture.expected.ids);
    expect(batch.dense).toHaveLength(fixture.expected.dense.length);
    const worst = Math.max(...Array.from(batch.dense, (x, i) => Math.abs(x - fixture.expected.dense[i]!)));
    expect(worst).toBeLessThanOrEqual(1e-7);
    expect(Array.from(batch.dense)).toEqual(fixture.expected.dense);
  });

  it("encodeRequest (the worker's path) equals encodeRows row by row", () => {
    const encoder = compileEncoder(fixture.state);
    const pick = (row: FeatureValues, side: string) =>
      Object.fromEntries(
        fixture.state.features.filter((f) => f.side === side).map((f) => [f.name, row[f.name]]),
      );
    const { denseSize, idSlots } = fixture.state;
    fixture.rows.forEach((row, r) => {
      const batch = encoder.encodeRequest({ user: pick(row, "user"), context: pick(row, "context") }, [
        pick(row, "item"),
        pick(row, "item"),
      ]);
      for (const copy of [0, 1]) {
        expect(Array.from(batch.ids.slice(copy * idSlots, (copy + 1) * idSlots))).toEqual(
          fixture.expected.ids.slice(r * idSlots, (r + 1) * idSlots),
        );
        expect(Array.from(batch.dense.slice(copy * denseSize, (copy + 1) * denseSize))).toEqual(
          fixture.expected.dense.slice(r * denseSize, (r + 1) * denseSize),
        );
      }
    });
  });
});
