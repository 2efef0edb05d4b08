/** The smoke test (trainer/pipeline/smoke.ts) against a small node:http stand-in for the worker. */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { modelSalt, saltState, userBucket } from "../../edge/model/ab-split.ts";
import type { EncoderState } from "../../shared/encoder/state.ts";
import { challengerUserId, type SmokeOptions, smokeTest } from "../../trainer/pipeline/smoke.ts";

const features = {
  features: [
    { name: "age", kind: "numeric", side: "user", mean: 30, std: 5 },
    { name: "item_id", kind: "categorical", side: "item", vocab: ["a", "b", "c"] },
  ],
} as unknown as EncoderState;

interface Worker {
  /** What /v1/models lists at the n-th poll (1-based). */
  models: (poll: number) => { id: string; version: string; arm: string }[];
  /** The rerank answer at the n-th call. */
  rerank: (
    call: number,
    body: { user: { id: string }; candidates: { id: string }[] },
  ) => {
    status: number;
    version: string;
    fallback?: boolean;
    id?: string;
    items?: number;
  };
  key?: string;
}

let close: (() => Promise<void>) | undefined;
afterEach(async () => {
  await close?.();
  close = undefined;
});

/** Starts the stand-in; returns its URL and what it was asked. */
async function serve(worker: Worker): Promise<{ url: string; seen: { polls: number; reranks: unknown[] } }> {
  const seen = { polls: 0, reranks: [] as unknown[] };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (worker.key && req.headers.authorization !== `Bearer ${worker.key}`) {
      res.writeHead(401).end();
      return;
    }
    if (req.method === "GET" && req.url === "/v1/models") {
      seen.polls++;
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ models: worker.models(seen.polls) }));
      return;
    }
    let text = "";
    req.on("data", (c: Buffer) => {
      text += c.toString();
    });
    req.on("end", () => {
      const body = JSON.parse(text) as { user: { id: string }; candidates: { id: string }[] };
      seen.reranks.push(body);
      const a = worker.rerank(seen.reranks.length, body);
      res.writeHead(a.status, {
        "content-type": "application/json",
        "x-model-version": a.version,
        ...(a.fallback ? { "x-mtrank-fallback": "1" } : {}),
      });
      const items = body.candidates.slice(0, a.items ?? body.candidates.length).map((c) => ({ id: c.id }));
      res.end(
        JSON.stringify({ model: { id: a.id ?? "m-new", version: a.version }, fallback: !!a.fallback, items }),
      );
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  close = () => new Promise((r) => server.close(() => r()));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

const options = (url: string, over: Partial<SmokeOptions> = {}): SmokeOptions => ({
  url,
  expected: { id: "m-new", version: "v2" },
  manifest: { features },
  pointer: "current",
  timeoutMs: 3000,
  pollMs: 20,
  ...over,
});

const OLD = { id: "m-old", version: "v1", arm: "champion" };
const NEW = { id: "m-new", version: "v2", arm: "champion" };

describe("smoke test", () => {
  it("polls /v1/models until the new model serves, then reranks the fixed request", async () => {
    const { url, seen } = await serve({
      models: (n) => [n < 3 ? OLD : NEW],
      rerank: () => ({ status: 200, version: "v2" }),
    });
    const r = await smokeTest(options(url));
    expect(r.passed).toBe(true);
    expect(r.polls).toBe(3);
    expect(r.servedAfterS).toBeGreaterThan(0);
    expect(r.rerank).toMatchObject({ status: 200, modelVersion: "v2", fallback: false, items: 20 });
    expect(r.detail).toMatch(/m-new v2 serves as champion; \/v1\/rerank: 200, 20 items, no fallback/);
    // The request carries the manifest's features and no user id: the champion serves it,
    // whatever the challenger's share and the split's salt.
    const body = seen.reranks[0] as {
      user: { id?: string; features: object };
      candidates: { features: object }[];
    };
    expect(body.user.features).toHaveProperty("age");
    expect(body.candidates[0]!.features).toHaveProperty("item_id");
    expect(body.user).not.toHaveProperty("id");
  });

  it("gives up at the deadline, saying what served instead", async () => {
    const { url, seen } = await serve({
      models: () => [OLD],
      rerank: () => ({ status: 200, version: "v1" }),
    });
    const r = await smokeTest(options(url, { timeoutMs: 300 }));
    expect(r.passed).toBe(false);
    expect(r.detail).toMatch(
      /m-new v2 did not serve as champion within 0.3 s: serving m-old v1 \(champion\)/,
    );
    expect(seen.polls).toBeGreaterThan(2);
    expect(seen.polls).toBeLessThan(40); // bounded by the deadline and the poll interval
    expect(seen.reranks).toHaveLength(0);
  });

  it("a fallback from the new model fails at once", async () => {
    const { url, seen } = await serve({
      models: () => [NEW],
      rerank: () => ({ status: 200, version: "v2", fallback: true }),
    });
    const r = await smokeTest(options(url));
    expect(r.passed).toBe(false);
    expect(r.detail).toMatch(/fell back/);
    expect(seen.reranks).toHaveLength(1);
  });

  it("an isolate still on the old version is retried; an error status fails", async () => {
    const { url } = await serve({
      models: () => [NEW],
      rerank: (n) => ({ status: 200, version: n < 3 ? "v1" : "v2" }),
    });
    const r = await smokeTest(options(url));
    expect(r.passed).toBe(true);
    await close?.();
    const bad = await serve({ models: () => [NEW], rerank: () => ({ status: 500, version: "v2" }) });
    const r500 = await smokeTest(options(bad.url));
    expect(r500.passed).toBe(false);
    expect(r500.detail).toMatch(/^POST \/v1\/rerank: 500/);
  });

  it("missing items and a wrong model id fail", async () => {
    const { url } = await serve({
      models: () => [NEW],
      rerank: () => ({ status: 200, version: "v2", items: 3 }),
    });
    expect((await smokeTest(options(url))).detail).toMatch(/3 items for 20 candidates/);
  });

  it("sends the API key; a refused key fails at once", async () => {
    const { url } = await serve({
      key: "k1",
      models: () => [NEW],
      rerank: () => ({ status: 200, version: "v2" }),
    });
    expect((await smokeTest(options(url, { apiKey: "k1" }))).passed).toBe(true);
    const refused = await smokeTest(options(url, { apiKey: "nope" }));
    expect(refused.passed).toBe(false);
    expect(refused.detail).toMatch(/401: the API key was refused/);
  });

  it("challenger: waits for the challenger arm and reranks as a challenger user", async () => {
    const { url, seen } = await serve({
      models: () => [OLD, { ...NEW, arm: "challenger" }],
      rerank: () => ({ status: 200, version: "v2" }),
    });
    expect((await smokeTest(options(url, { pointer: "challenger" }))).passed).toBe(true);
    // Bucket 0 (the challenger's at any share) under the salt the worker uses for the new
    // challenger without MTRANK_AB_SALT: its id and version.
    const salt = saltState(modelSalt({ id: "m-new", version: "v2" }));
    const id = (seen.reranks[0] as { user: { id: string } }).user.id;
    expect(userBucket(id, salt)).toBe(0);
    expect(challengerUserId(salt)).toBe(id);
    // With the worker's MTRANK_AB_SALT (smoke.abSalt), bucket 0 under it, trimmed as the worker trims it.
    expect((await smokeTest(options(url, { pointer: "challenger", abSalt: " exp-7 " }))).passed).toBe(true);
    expect(userBucket((seen.reranks[1] as { user: { id: string } }).user.id, saltState("exp-7"))).toBe(0);
  });

  it("an unreachable worker is a failed result, not a throw", async () => {
    const r = await smokeTest(options("http://127.0.0.1:9", { timeoutMs: 200 }));
    expect(r.passed).toBe(false);
    expect(r.detail).toMatch(/GET \/v1\/models: /);
  });
});
