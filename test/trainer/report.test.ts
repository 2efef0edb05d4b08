import { describe, expect, it } from "vitest";
import { DEFAULT_ARCH_OPTIONS } from "../../trainer/models/types.ts";
import { renderReport } from "../../trainer/report/training-report.ts";

const validation = { click: { auc: 0.71, logloss: 0.4, positiveRate: 0.1, count: 100 } };
const model = {
  config: {
    arch: "shared-bottom",
    options: DEFAULT_ARCH_OPTIONS,
    embeddingDim: 8,
    denseSize: 2,
    idSlots: 1,
    vocabSize: 10,
    heads: [{ name: "click", type: "binary" as const }],
  },
  encoder: {
    version: 1 as const,
    trim: true,
    missing: [""],
    denseSize: 2,
    idSlots: 1,
    vocabSize: 10,
    features: [
      {
        kind: "categorical" as const,
        name: "<b>item</b>",
        side: "item" as const,
        slot: 0,
        offset: 0,
        size: 10,
        vocab: [],
      },
    ],
  },
  validation,
  training: {
    createdAt: "2026-11-23T00:00:00Z",
    data: "logs.csv",
    seed: 1,
    epochs: 3,
    bestEpoch: 2,
    taskWeights: { click: 1 },
    trainRows: 900,
    validRows: 100,
    backend: "cpu",
    history: [1, 2, 3].map((epoch) => ({ epoch, trainLoss: 1 / epoch, score: 0.7, seconds: 1, validation })),
  },
};

describe("training report", () => {
  it("has a chart per curve, the metrics table and escaped names", () => {
    const html = renderReport(model);
    expect(html.match(/<svg /g)).toHaveLength(3);
    expect(html).toContain("0.7100");
    expect(html).toContain("3 run, best 2");
    expect(html).not.toContain("<b>item</b>");
    expect(html).toContain("&#60;b&#62;item");
  });
});
