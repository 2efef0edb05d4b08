import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { DEFAULT_ARCH_OPTIONS } from "../../trainer/models/types.ts";
import { FULL_WIDTH_ROWS, layerWidths } from "../../trainer/train/layer-widths.ts";

describe("layerWidths", () => {
  it("keeps the default widths from FULL_WIDTH_ROWS training rows", () => {
    expect(layerWidths({}, FULL_WIDTH_ROWS)).toEqual(DEFAULT_ARCH_OPTIONS);
    expect(layerWidths({}, 10 * FULL_WIDTH_ROWS)).toEqual(DEFAULT_ARCH_OPTIONS);
  });

  it("narrows every hidden layer on a small file, to a quarter at most", () => {
    const half = layerWidths({}, FULL_WIDTH_ROWS / 2);
    expect(half.bottom).toEqual([64, 32]);
    expect(half.expertSizes).toEqual([32, 16]);
    expect(half.tower).toEqual([16]);
    const tiny = layerWidths({}, 300);
    expect(tiny.bottom).toEqual([32, 16]);
    expect(tiny.expertSizes).toEqual([16, 8]);
    expect(tiny.tower).toEqual([8]);
    // Expert counts, cross layers and levels are not widths.
    expect({ ...tiny, bottom: [], tower: [], expertSizes: [] }).toEqual({
      ...DEFAULT_ARCH_OPTIONS,
      bottom: [],
      tower: [],
      expertSizes: [],
    });
  });

  it("gives multiples of 4 that never grow with fewer rows", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 * FULL_WIDTH_ROWS }),
        fc.integer({ min: 1, max: 5000 }),
        (rows, fewer) => {
          const a = layerWidths({}, rows);
          const b = layerWidths({}, Math.max(0, rows - fewer));
          for (const field of ["bottom", "tower", "expertSizes"] as const) {
            for (const [i, w] of a[field].entries()) {
              expect(w % 4).toBe(0);
              expect(w).toBeGreaterThanOrEqual(4);
              expect(b[field][i]!).toBeLessThanOrEqual(w);
            }
          }
        },
      ),
    );
  });

  it("keeps the widths a run names, and an earlier model's on a warm start", () => {
    expect(layerWidths({ tower: [64] }, 500).tower).toEqual([64]);
    const previous = layerWidths({}, 3000);
    const warm = layerWidths({}, 5 * FULL_WIDTH_ROWS, previous);
    expect(warm.bottom).toEqual(previous.bottom);
    expect(warm.expertSizes).toEqual(previous.expertSizes);
    expect(layerWidths({ bottom: [128] }, 5 * FULL_WIDTH_ROWS, previous).bottom).toEqual([128]);
  });
});
