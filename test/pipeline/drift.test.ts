import { describe, expect, it } from "vitest";
import { DEFAULT_DRIFT } from "../../trainer/pipeline/config.ts";
import type { DataStats, DriftFinding, DriftReport } from "../../trainer/pipeline/contracts.ts";
import { driftReport, formatDrift, jensenShannon, psi } from "../../trainer/pipeline/drift.ts";
import { statsCollector } from "../../trainer/pipeline/stats.ts";
import { type DayOptions, makeRows, spec } from "./data-rows.ts";

/** The day's own stats, and its stats on the champion's bins when there is one. */
function day(options: DayOptions, champion?: DataStats): { own: DataStats; onChampion: DataStats } {
  const collector = statsCollector(spec);
  for (const r of makeRows(4000, options)) {
    const dwell = r.dwell === null ? Number.NaN : Math.log1p(r.dwell);
    collector.add(r as unknown as Record<string, unknown>, [r.click, dwell]);
  }
  return { own: collector.finish(), onChampion: collector.finish(champion) };
}

function finding(report: DriftReport, subject: string, measure: DriftFinding["measure"]): DriftFinding {
  const f = report.findings.find((x) => x.subject === subject && x.measure === measure);
  if (!f) throw new Error(`no ${measure} finding for ${subject}`);
  return f;
}

const champion = day({ seed: 1 }).own;

describe("driftReport", () => {
  it("finds nothing between a data set and itself", () => {
    const report = driftReport(champion, champion, DEFAULT_DRIFT, { tasks: spec.tasks });
    expect(report.level).toBe("ok");
    for (const f of report.findings) expect(Math.abs(f.value)).toBeLessThan(1e-12);
    expect(report.findings.map((f) => `${f.subject} ${f.measure}`)).toEqual([
      "feature:price psi",
      "feature:country psi",
      "feature:country js",
      "feature:country unseen",
      "feature:tags psi",
      "feature:tags js",
      "feature:tags unseen",
      "label:click rate",
      "label:dwell rate",
    ]);
  });

  it("finds little between two samples of the same distribution", () => {
    const report = driftReport(champion, day({ seed: 2 }, champion).onChampion, DEFAULT_DRIFT, {
      tasks: spec.tasks,
    });
    expect(report.level).toBe("ok");
    expect(finding(report, "feature:price", "psi").value).toBeLessThan(0.02);
  });

  it("stops on a shifted numeric feature, exactly on the champion's bins and estimated without them", () => {
    const shifted = day({ seed: 2, shift: 25 }, champion);
    const exact = driftReport(champion, shifted.onChampion, DEFAULT_DRIFT, { tasks: spec.tasks });
    const price = finding(exact, "feature:price", "psi");
    expect(price.value).toBeGreaterThan(0.25);
    expect(price.level).toBe("stop");
    expect(exact.level).toBe("stop");
    expect(finding(exact, "feature:country", "psi").level).toBe("ok");
    const estimated = finding(
      driftReport(champion, shifted.own, DEFAULT_DRIFT, { tasks: spec.tasks }),
      "feature:price",
      "psi",
    );
    expect(estimated.level).toBe("stop");
    // Without the champion's bins the same data still reads as the same.
    const same = day({ seed: 2 }, champion).own;
    expect(
      finding(driftReport(champion, same, DEFAULT_DRIFT, { tasks: spec.tasks }), "feature:price", "psi")
        .value,
    ).toBeLessThan(0.1);
  });

  it("stops on a feature that goes missing", () => {
    const report = driftReport(
      champion,
      day({ seed: 2, missingPrice: 0.5 }, champion).onChampion,
      DEFAULT_DRIFT,
      { tasks: spec.tasks },
    );
    expect(finding(report, "feature:price", "psi").level).toBe("stop");
  });

  it("catches a flood of new categories as unseen, and a trickle as a warning", () => {
    const flood = driftReport(
      champion,
      day({ seed: 2, newCountries: 0.4 }, champion).onChampion,
      DEFAULT_DRIFT,
      { tasks: spec.tasks },
    );
    const unseen = finding(flood, "feature:country", "unseen");
    expect(unseen.value).toBeGreaterThan(0.35);
    expect(unseen.value).toBeLessThan(0.45);
    expect(unseen.level).toBe("stop");
    expect(finding(flood, "feature:country", "js").level).not.toBe("ok");
    // The known countries keep their proportions: PSI over them stays quiet.
    expect(finding(flood, "feature:country", "psi").level).toBe("ok");
    expect(flood.level).toBe("stop");

    const trickle = driftReport(
      champion,
      day({ seed: 2, newCountries: 0.08 }, champion).onChampion,
      DEFAULT_DRIFT,
      { tasks: spec.tasks },
    );
    expect(finding(trickle, "feature:country", "unseen").level).toBe("warn");
    expect(trickle.level).toBe("warn");
  });

  it("against a long tail judges no unseen share, and a flood into the tail by PSI", () => {
    const tail = (other: number): DataStats => ({
      rows: 100,
      features: { id: { kind: "categorical", shares: { a: 1 - other }, other, missing: 0 } },
      labels: {},
    });
    const report = driftReport(tail(0.9), tail(0.93), DEFAULT_DRIFT, { tasks: spec.tasks });
    expect(report.findings.some((f) => f.measure === "unseen")).toBe(false);
    expect(finding(report, "feature:id", "psi").value).toBeGreaterThan(0);
    expect(report.level).toBe("ok");
    const flood = driftReport(tail(0.5), tail(0.95), DEFAULT_DRIFT, { tasks: spec.tasks });
    expect(finding(flood, "feature:id", "psi").level).toBe("stop");
  });

  it("judges label-rate changes by their size", () => {
    const up = driftReport(champion, day({ seed: 2, clickRate: 0.24 }).own, DEFAULT_DRIFT, {
      tasks: spec.tasks,
    });
    const click = finding(up, "label:click", "rate");
    expect(click.value).toBeGreaterThan(0.02);
    expect(click.value).toBeLessThan(0.1);
    expect(click.level).toBe("warn");
    const down = finding(
      driftReport(champion, day({ seed: 2, clickRate: 0.05 }).own, DEFAULT_DRIFT, { tasks: spec.tasks }),
      "label:click",
      "rate",
    );
    expect(down.value).toBeLessThan(-0.1);
    expect(down.level).toBe("stop");
  });

  it("compares a regression task's mean relatively, given the tasks", () => {
    const stats = (mean: number): DataStats => ({
      rows: 10,
      features: {},
      labels: { dwell: { rate: mean, labelled: 10 } },
    });
    const relative = finding(
      driftReport(stats(4), stats(4.3), DEFAULT_DRIFT, { tasks: spec.tasks }),
      "label:dwell",
      "rate",
    );
    expect(relative.value).toBeCloseTo(0.075, 12);
    expect(relative.level).toBe("warn");
    const absolute = finding(driftReport(stats(4), stats(4.3), DEFAULT_DRIFT), "label:dwell", "rate");
    expect(absolute.value).toBeCloseTo(0.3, 12);
    expect(absolute.level).toBe("stop");
  });

  it("leaves out what only one side has", () => {
    const current: DataStats = { rows: 1, features: {}, labels: { click: { rate: 0, labelled: 0 } } };
    expect(driftReport(champion, current, DEFAULT_DRIFT, { tasks: spec.tasks })).toEqual({
      findings: [],
      level: "ok",
    });
  });
});

describe("measures", () => {
  it("PSI and JS of known distributions", () => {
    expect(psi([0.5, 0.5], [0.5, 0.5])).toBe(0);
    expect(psi([0.5, 0.5], [0.9, 0.1])).toBeCloseTo(
      0.4 * Math.log(0.9 / 0.5) - 0.4 * Math.log(0.1 / 0.5),
      12,
    );
    expect(jensenShannon([1, 0], [0, 1])).toBeCloseTo(1, 12);
    expect(jensenShannon([0.3, 0.7], [0.3, 0.7])).toBe(0);
  });
});

describe("formatDrift", () => {
  it("prints one line per subject, worst first, under a summary", () => {
    const report = driftReport(
      champion,
      day({ seed: 2, shift: 25, clickRate: 0.24 }, champion).onChampion,
      DEFAULT_DRIFT,
      { tasks: spec.tasks },
    );
    const text = formatDrift(report);
    const lines = text.split("\n");
    expect(lines[0]).toMatch(/^drift: stop \(1 stop, 1 warn, 3 ok\)$/);
    expect(lines[1]).toMatch(/^subject\s+psi\s+js\s+unseen\s+rate\s+level$/);
    expect(lines[2]).toMatch(/^feature:price\s+\d+\.\d{3}\s+-\s+-\s+-\s+stop$/);
    expect(lines[3]).toMatch(/^label:click\s+-\s+-\s+-\s+\+0\.\d{4}\s+warn$/);
    expect(lines).toHaveLength(7);
    expect(formatDrift(report, { flaggedOnly: true }).split("\n")).toHaveLength(4);
    expect(
      formatDrift(driftReport(champion, champion, DEFAULT_DRIFT, { tasks: spec.tasks }), {
        flaggedOnly: true,
      }),
    ).toBe("drift: ok (0 stop, 0 warn, 5 ok)");
  });
});

describe("driftReport on a feature with many values", () => {
  /**
   * Stats of `rows` draws over `values` ids (weights from `weight`): the top 50 listed as stats.ts
   * lists them, or, given a champion, shares of the champion's listed ids (stats on its bins, as
   * the pipeline makes the new day's).
   */
  function idStats(
    seed: number,
    rows: number,
    values: number,
    weight: (i: number) => number,
    champion?: DataStats,
  ): DataStats {
    let state = seed;
    const random = () => {
      state = (state * 1103515245 + 12345) % 2147483648;
      return state / 2147483648;
    };
    const weights = Array.from({ length: values }, (_, i) => weight(i));
    const total = weights.reduce((a, b) => a + b, 0);
    const counts = new Map<string, number>();
    for (let r = 0; r < rows; r++) {
      let x = random() * total;
      let i = 0;
      while (x > weights[i]! && i < values - 1) x -= weights[i++]!;
      counts.set(`u${i}`, (counts.get(`u${i}`) ?? 0) + 1);
    }
    const reference = champion?.features.user_id;
    const top =
      reference?.kind === "categorical"
        ? Object.keys(reference.shares).map((k): [string, number] => [k, counts.get(k) ?? 0])
        : [...counts].sort((a, b) => b[1] - a[1]).slice(0, 50);
    const listed = top.reduce((a, [, n]) => a + n, 0);
    return {
      rows,
      features: {
        user_id: {
          kind: "categorical",
          shares: Object.fromEntries(top.map(([k, n]) => [k, n / rows])),
          other: (rows - listed) / rows,
          missing: 0,
        },
      },
      labels: {},
    };
  }

  it("two samples of the same ids are not drift; mass moving onto one id is", () => {
    const uniform = () => 1;
    const champion = idStats(1, 3000, 300, uniform);
    const same = driftReport(champion, idStats(2, 3000, 300, uniform, champion), DEFAULT_DRIFT);
    expect(same.level).toBe("ok");
    // No unseen finding: the champion's stats list 50 of 300 ids, so a new id looks like a tail id.
    expect(same.findings.map((f) => f.measure)).toEqual(["psi", "js"]);
    const listed = champion.features.user_id as { shares: Record<string, number> };
    const first = Number(Object.keys(listed.shares)[0]!.slice(1));
    const shifted = driftReport(
      champion,
      idStats(3, 3000, 300, (i) => (i === first ? 90 : 1), champion),
      DEFAULT_DRIFT,
    );
    expect(finding(shifted, "feature:user_id", "psi").level).toBe("stop");
  });
});
