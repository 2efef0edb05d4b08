/** Champion/challenger A/B split by a stable hash of the user id (MTRANK_CHALLENGER_SHARE). */
import { env } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it, type MockInstance, vi } from "vitest";
import { createApp } from "../../edge/app.ts";
import type { EdgeEnv } from "../../edge/env.ts";
import { assignArm } from "../../edge/model/ab-split.ts";
import { sha256Hex } from "../../edge/model/remote.ts";
import modelBytes from "../../fixtures/model/model.onnx";
import { backgroundWork } from "./r2-store.ts";
import { candidates, type Fetch, get, manifest, postRerank, type RerankBody, user } from "./requests.ts";

const users = Array.from({ length: 1000 }, (_, i) => `user-${i}`);
const challengerManifest = { ...manifest, version: "challenger-v" };

let logged: MockInstance<typeof console.log>;
beforeEach(() => {
  logged = vi.spyOn(console, "log").mockImplementation(() => undefined);
});
afterEach(() => {
  logged.mockRestore();
});

describe("assignArm", () => {
  it("share 0 -> nobody, share 100 -> everybody", () => {
    expect(users.filter((u) => assignArm(u, 0) === "challenger")).toEqual([]);
    expect(users.filter((u) => assignArm(u, 100) === "champion")).toEqual([]);
    expect(assignArm("", 100)).toBe("challenger");
  });

  it("about the configured share over 1,000 users", () => {
    for (const share of [1, 10, 30, 50, 90]) {
      const n = users.filter((u) => assignArm(u, share) === "challenger").length;
      // Binomial(1000, p): allow 4 standard deviations (and at least 4 users at 1%).
      const sd = Math.sqrt(1000 * (share / 100) * (1 - share / 100));
      expect(Math.abs(n - share * 10), `share ${share}%: ${n} users`).toBeLessThanOrEqual(
        Math.max(4, 4 * sd),
      );
    }
  });

  it("a user keeps its arm, and ramping the share up only moves champion users over", () => {
    const at = (share: number) => new Set(users.filter((u) => assignArm(u, share) === "challenger"));
    expect(at(20)).toEqual(at(20));
    const ten = at(10);
    const twenty = at(20);
    for (const u of ten) expect(twenty.has(u)).toBe(true);
    expect(twenty.size).toBeGreaterThan(ten.size);
  });
});

function abApp(share: string, extra: EdgeEnv = {}): Fetch {
  const app = createApp(
    { manifest, model: modelBytes },
    { challenger: { manifest: challengerManifest, model: modelBytes } },
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
      const arm = assignArm(u, 50);
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
    // "" hashes to bucket 8923: read as an id, every blank-id request would move at 89.24 %.
    expect(assignArm("", 90)).toBe("challenger");
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

  it("/v1/models lists both arms while the challenger has a share", async () => {
    const res = await get("/v1/models", abApp("25"));
    const body = (await res.json()) as { models: { version: string; arm: string }[] };
    expect(body.models.map((m) => [m.arm, m.version])).toEqual([
      ["champion", manifest.version],
      ["challenger", "challenger-v"],
    ]);
  });

  it("a challenger from R2 (KV models/challenger) serves its share", async () => {
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
        ["champion", "challenger"],
        ["challenger", undefined],
      ]);
    } finally {
      await env.TEST_POINTERS.delete("models/challenger");
    }
  });
});
