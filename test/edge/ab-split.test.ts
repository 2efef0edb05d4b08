/**
 * Champion/challenger A/B split by a stable hash of the user id (MTRANK_CHALLENGER_SHARE), salted
 * per experiment (MTRANK_AB_SALT, else the challenger model's id and version).
 */
import { env } from "cloudflare:workers";
import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, it, type MockInstance, vi } from "vitest";
import { createApp } from "../../edge/app.ts";
import type { EdgeEnv } from "../../edge/env.ts";
import { assignArm, modelSalt, saltState, userBucket } from "../../edge/model/ab-split.ts";
import { sha256Hex } from "../../edge/model/remote.ts";
import modelBytes from "../../fixtures/model/model.onnx";
import { backgroundWork } from "./r2-store.ts";
import { candidates, type Fetch, get, manifest, postRerank, type RerankBody, user } from "./requests.ts";

const users = Array.from({ length: 1000 }, (_, i) => `user-${i}`);
const challengerManifest = { ...manifest, version: "challenger-v" };
/** The salt the worker uses for the bundled challenger below when MTRANK_AB_SALT is unset. */
const challengerSalt = saltState(modelSalt(challengerManifest));
const salt = saltState("some experiment");
/** Fixed seeds: the statistical bands below hold for these draws, so the tests never flake. */
const seeded = (numRuns: number) => ({ seed: 20_260_815, numRuns });

let logged: MockInstance<typeof console.log>;
beforeEach(() => {
  logged = vi.spyOn(console, "log").mockImplementation(() => undefined);
});
afterEach(() => {
  logged.mockRestore();
});

describe("assignArm", () => {
  it("share 0 -> nobody, share 100 -> everybody", () => {
    expect(users.filter((u) => assignArm(u, 0, salt) === "challenger")).toEqual([]);
    expect(users.filter((u) => assignArm(u, 100, salt) === "champion")).toEqual([]);
    expect(assignArm("", 100, salt)).toBe("challenger");
  });

  it("about the configured share over 1,000 users", () => {
    for (const share of [1, 10, 30, 50, 90]) {
      const n = users.filter((u) => assignArm(u, share, salt) === "challenger").length;
      // Binomial(1000, p): allow 4 standard deviations (and at least 4 users at 1%).
      const sd = Math.sqrt(1000 * (share / 100) * (1 - share / 100));
      expect(Math.abs(n - share * 10), `share ${share}%: ${n} users`).toBeLessThanOrEqual(
        Math.max(4, 4 * sd),
      );
    }
  });

  it("a user keeps its arm, and ramping the share up only moves champion users over", () => {
    const at = (share: number) => new Set(users.filter((u) => assignArm(u, share, salt) === "challenger"));
    expect(at(20)).toEqual(at(20));
    const ten = at(10);
    const twenty = at(20);
    for (const u of ten) expect(twenty.has(u)).toBe(true);
    expect(twenty.size).toBeGreaterThan(ten.size);
  });

  it("property: within one salt, ramping the share up never moves a user back to the champion", () => {
    fc.assert(
      fc.property(
        fc.string({ maxLength: 40 }),
        fc.array(fc.string({ maxLength: 24 }), { minLength: 1, maxLength: 50 }),
        fc.integer({ min: 0, max: 10_000 }),
        fc.integer({ min: 0, max: 10_000 }),
        (saltText, ids, a, b) => {
          const s = saltState(saltText);
          const [low, high] = a <= b ? [a / 100, b / 100] : [b / 100, a / 100];
          for (const id of ids) {
            // The same answer every time, and challenger at the lower share implies at the higher.
            expect(assignArm(id, low, s)).toBe(assignArm(id, low, saltState(saltText)));
            if (assignArm(id, low, s) === "challenger") expect(assignArm(id, high, s)).toBe("challenger");
          }
        },
      ),
      seeded(200),
    );
  });

  // 20,000 ids, sequential like real user numbers: the hardest case for a weak hash.
  const many = Array.from({ length: 20_000 }, (_, i) => `user-${i}`);
  const challengers = (s: number, share = 10) => many.filter((u) => assignArm(u, share, s) === "challenger");

  it("property: two salts draw the challenger's users independently (overlap at 10 % is about 1 %)", () => {
    const check = (x: string, y: string) => {
      const first = new Set(challengers(saltState(x)));
      const both = challengers(saltState(y)).filter((u) => first.has(u)).length;
      // Independent draws at 10 %: 1 % of 20,000 = 200 in both (sd 14); the same users every time
      // (an unsalted hash) would be 2,000.
      expect(both / many.length, `${JSON.stringify(x)} / ${JSON.stringify(y)}: ${both}`).toBeGreaterThan(
        0.005,
      );
      expect(both / many.length, `${JSON.stringify(x)} / ${JSON.stringify(y)}: ${both}`).toBeLessThan(0.016);
    };
    // Salts a bump apart, as successive experiments' are.
    check("a", "b");
    check("", " ");
    check(modelSalt({ id: "m", version: "v1" }), modelSalt({ id: "m", version: "v2" }));
    fc.assert(
      fc.property(
        fc.tuple(fc.string({ maxLength: 30 }), fc.string({ maxLength: 30 })).filter(([x, y]) => x !== y),
        ([x, y]) => check(x, y),
      ),
      seeded(12),
    );
  });

  it("property: under any salt the buckets stay uniform", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), (saltText) => {
        const s = saltState(saltText);
        // 20 equal bands of 500 buckets, 1,000 ids expected in each: chi-square with 19 degrees
        // of freedom, 43.8 at p = 0.001.
        const bands = new Array<number>(20).fill(0);
        for (const u of many) bands[Math.floor(userBucket(u, s) / 500)]! += 1;
        const chi2 = bands.reduce((sum, n) => sum + (n - 1000) ** 2 / 1000, 0);
        expect(chi2, `salt ${JSON.stringify(saltText)}: ${bands.join(" ")}`).toBeLessThan(43.8);
        expect(challengers(s).length).toBeGreaterThan(2000 - 4 * 42);
        expect(challengers(s).length).toBeLessThan(2000 + 4 * 42);
      }),
      seeded(12),
    );
  });

  it('a salt is not a prefix of the id: salt "ab" with id "c" is not salt "a" with id "bc"', () => {
    const split = many.filter((u) => userBucket(`x${u}`, saltState("a")) === userBucket(u, saltState("ax")));
    // Unrelated buckets agree one time in 10,000.
    expect(split.length).toBeLessThan(10);
  });
});

function abApp(share: string, extra: EdgeEnv = {}, challenger: typeof manifest = challengerManifest): Fetch {
  const app = createApp(
    { manifest, model: modelBytes },
    { challenger: { manifest: challenger, model: modelBytes } },
  );
  const binding: EdgeEnv = { MTRANK_CHALLENGER_SHARE: share, ...extra };
  return async (request) => app.fetch(request, binding);
}

async function served(fetch: Fetch, userId: string | undefined) {
  const body = { user: { ...user, id: userId }, candidates: candidates(4) };
  const res = await postRerank(body, fetch);
  expect(res.status).toBe(200);
  const json = (await res.json()) as RerankBody;
  expect(json.fallback).toBe(false);
  // The header and the body name the same model.
  expect(res.headers.get("x-model-version")).toBe(json.model.version);
  return { version: json.model.version, arm: res.headers.get("x-mtrank-arm") };
}

describe("A/B through the worker", () => {
  it("each user is served by the model of its arm; both arms serve at 50%", async () => {
    const fetch = abApp("50");
    const seen = { champion: 0, challenger: 0 };
    for (const u of users.slice(0, 40)) {
      const arm = assignArm(u, 50, challengerSalt);
      const got = await served(fetch, u);
      expect(got).toEqual({ arm, version: arm === "challenger" ? "challenger-v" : manifest.version });
      expect(await served(fetch, u)).toEqual(got); // stable across requests
      seen[arm] += 1;
    }
    expect(seen.champion).toBeGreaterThan(5);
    expect(seen.challenger).toBeGreaterThan(5);
    const line = logged.mock.calls.map((c) => JSON.parse(String(c[0]))).find((l) => l.event === "request");
    expect(["champion", "challenger"]).toContain(line.arm);
  });

  it("share 0 and no share -> always the champion; share 100 -> always the challenger", async () => {
    for (const [share, version] of [
      ["0", manifest.version],
      ["", manifest.version],
      ["100", "challenger-v"],
    ] as const)
      for (const u of users.slice(0, 10))
        expect((await served(abApp(share), u)).version, `${share}: ${u}`).toBe(version);
  });

  it("no user id -> the champion, whatever the share", async () => {
    expect(await served(abApp("100"), undefined)).toEqual({ arm: "champion", version: manifest.version });
    const line = logged.mock.calls.map((c) => JSON.parse(String(c[0]))).find((l) => l.event === "request");
    expect(line).toMatchObject({ arm: "champion" });
    expect(line).not.toHaveProperty("assigned");
  });

  it("a blank user id is no id -> the champion, whatever the share", async () => {
    // Read as an id, every blank-id request would move between arms as one block.
    expect(assignArm("", 90, challengerSalt)).toBe("challenger");
    for (const id of ["", " ", "\t \n"])
      expect(await served(abApp("90"), id), JSON.stringify(id)).toEqual({
        arm: "champion",
        version: manifest.version,
      });
  });

  it("an invalid share is logged and read as 0", async () => {
    expect((await served(abApp("150"), "user-1")).version).toBe(manifest.version);
    const lines = logged.mock.calls.map((c) => JSON.parse(String(c[0])) as Record<string, unknown>);
    expect(lines.find((l) => l.event === "config.invalid")?.error).toMatch(/MTRANK_CHALLENGER_SHARE/);
  });

  /** The users, of `ids`, the worker serves from the challenger. */
  async function challengerUsers(fetch: Fetch, ids: readonly string[]): Promise<string[]> {
    const out: string[] = [];
    for (const u of ids) if ((await served(fetch, u)).arm === "challenger") out.push(u);
    return out;
  }
  const sample = users.slice(0, 60);
  const expected = (s: number, share = 50) => sample.filter((u) => assignArm(u, share, s) === "challenger");

  it("the challenger model's id and version salt the split: a new challenger draws other users", async () => {
    const next = { ...manifest, version: "challenger-v2" };
    const first = await challengerUsers(abApp("50"), sample);
    const second = await challengerUsers(abApp("50", {}, next), sample);
    expect(first).toEqual(expected(challengerSalt));
    expect(second).toEqual(expected(saltState(modelSalt(next))));
    // Two independent halves of 60 users: the unsalted split gave both challengers the same ones.
    expect(second).not.toEqual(first);
    // Ramping one challenger keeps its users.
    const ramped = await challengerUsers(abApp("80"), sample);
    for (const u of first) expect(ramped).toContain(u);
  });

  it("MTRANK_AB_SALT replaces the challenger's identity: one assignment across challenger versions", async () => {
    const salted = { MTRANK_AB_SALT: "  spring-test  " };
    const first = await challengerUsers(abApp("50", salted), sample);
    const second = await challengerUsers(
      abApp("50", salted, { ...manifest, version: "challenger-v2" }),
      sample,
    );
    // Trimmed, as every setting is.
    expect(first).toEqual(expected(saltState("spring-test")));
    expect(second).toEqual(first);
    // Another salt reshuffles; an empty one is unset.
    expect(await challengerUsers(abApp("50", { MTRANK_AB_SALT: "autumn-test" }), sample)).toEqual(
      expected(saltState("autumn-test")),
    );
    expect(await challengerUsers(abApp("50", { MTRANK_AB_SALT: " " }), sample)).toEqual(
      expected(challengerSalt),
    );
  });

  it("a bad MTRANK_AB_SALT is logged once, never with its value, and the challenger's identity salts the split", async () => {
    for (const [bad, why] of [
      ["x".repeat(257), /MTRANK_AB_SALT must be at most 256 characters, got 257/],
      [{ salt: "s" }, /MTRANK_AB_SALT must be a string, got object/],
    ] as const) {
      logged.mockClear();
      const fetch = abApp("50", { MTRANK_AB_SALT: bad as string });
      expect(await challengerUsers(fetch, sample.slice(0, 20))).toEqual(
        sample.slice(0, 20).filter((u) => assignArm(u, 50, challengerSalt) === "challenger"),
      );
      const invalid = logged.mock.calls
        .map((c) => JSON.parse(String(c[0])) as Record<string, unknown>)
        .filter((l) => l.event === "config.invalid");
      expect(invalid).toHaveLength(1);
      expect(invalid[0]!.error).toMatch(why);
      expect(String(invalid[0]!.error)).not.toContain("xxxxxxxx");
    }
  });

  it("/v1/models lists both arms while the challenger has a share", async () => {
    const res = await get("/v1/models", abApp("25"));
    const body = (await res.json()) as { models: { version: string; arm: string }[] };
    expect(body.models.map((m) => [m.arm, m.version])).toEqual([
      ["champion", manifest.version],
      ["challenger", "challenger-v"],
    ]);
  });

  it.each([
    // Without MTRANK_AB_SALT the salt is the challenger's identity: while it loads, the
    // assignment is not known yet.
    ["no MTRANK_AB_SALT", {}, "unknown"],
    ["MTRANK_AB_SALT", { MTRANK_AB_SALT: "exp-1" }, "challenger"],
  ] as const)("a challenger from R2 (KV models/challenger) serves its share (%s)", async (_, salted, whileLoading) => {
    const prefix = "models/challenger-r2/";
    const files = { "model.onnx": { sha256: await sha256Hex(modelBytes), bytes: modelBytes.byteLength } };
    await env.TEST_MODELS.put(
      `${prefix}manifest.json`,
      JSON.stringify({ ...manifest, version: "r2-challenger", files }),
    );
    await env.TEST_MODELS.put(`${prefix}model.onnx`, modelBytes);
    await env.TEST_POINTERS.put("models/challenger", prefix);
    try {
      const app = createApp({ manifest, model: modelBytes });
      const binding: EdgeEnv = {
        ...salted,
        MTRANK_CHALLENGER_SHARE: "100",
        MTRANK_MODELS: env.TEST_MODELS,
        MTRANK_MODEL_POINTERS: env.TEST_POINTERS,
      };
      const background = backgroundWork();
      const fetch: Fetch = async (r) => app.fetch(r, binding, background.ctx);
      // No bundled challenger: while the R2 one loads (in waitUntil), the champion serves its users.
      expect(await served(fetch, "user-7")).toEqual({ arm: "champion", version: manifest.version });
      await background.settle();
      expect(await served(fetch, "user-7")).toEqual({ arm: "challenger", version: "r2-challenger" });
      // The log keeps the arm that served (`arm`) and, when another did, the one assigned.
      const requests = logged.mock.calls
        .map((c) => JSON.parse(String(c[0])) as Record<string, unknown>)
        .filter((l) => l.event === "request");
      expect(requests.map((l) => [l.arm, l.assigned])).toEqual([
        ["champion", whileLoading],
        ["challenger", undefined],
      ]);
    } finally {
      await env.TEST_POINTERS.delete("models/challenger");
    }
  });
});
