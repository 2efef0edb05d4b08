/**
 * One graph load at a time per isolate, champion and challenger together: loading a graph grows
 * onnxruntime's wasm memory by 2.5–3.6 times the graph while its bytes are held in JS, and
 * MTRANK_MODEL_MAX_BYTES leaves room for one such load beside the sessions serving, not two.
 *
 * Through the worker (miniflare's R2 and KV, onnxruntime in workerd) with both pointers set: a
 * timeline of the worker's R2 reads and its model.swap / model.rejected lines shows when each
 * load runs, from its manifest's read to the line that ends it.
 */
import { env } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it, type MockInstance, vi } from "vitest";
import { createApp } from "../../edge/app.ts";
import type { EdgeEnv, R2ObjectBody } from "../../edge/env.ts";
import { CHALLENGER_POINTER, CURRENT_POINTER, modelCatalog } from "../../edge/model/catalog.ts";
import { servingModel } from "../../edge/model/serving-model.ts";
import modelBytes from "../../fixtures/model/model.onnx";
import { backgroundWork, gate, upload } from "./r2-store.ts";
import { candidates, manifest, postRerank, type RerankBody, rerankBody, user } from "./requests.ts";

/** R2 reads, KV reads answered, and the lines that end a load, in the order they happened. */
let timeline: string[] = [];
let logged: MockInstance<typeof console.log>;
beforeEach(async () => {
  timeline = [];
  logged = vi.spyOn(console, "log").mockImplementation((line: unknown) => {
    const { event, pointerKey } = JSON.parse(String(line)) as { event: string; pointerKey?: string };
    if (event === "model.swap" || event === "model.rejected") timeline.push(`${event} ${pointerKey}`);
  });
  await env.TEST_POINTERS.delete(CURRENT_POINTER);
  await env.TEST_POINTERS.delete(CHALLENGER_POINTER);
});
afterEach(async () => {
  logged.mockRestore();
  await env.TEST_POINTERS.delete(CURRENT_POINTER);
  await env.TEST_POINTERS.delete(CHALLENGER_POINTER);
});

interface Hooks {
  /** Awaited before a KV pointer read answers. */
  pointer?: (key: string) => Promise<void>;
  /** Awaited before an R2 read answers (a slow or hung download). */
  object?: (key: string) => Promise<void>;
  /** Sees each object R2 answers with, and may wrap it. */
  answer?: (key: string, object: R2ObjectBody | null) => R2ObjectBody | null;
}

/** Both bindings, the pointers read at every request, the challenger serving half the users. */
function bindings(hooks: Hooks = {}): EdgeEnv {
  return {
    MTRANK_MODEL_REFRESH_S: "0",
    MTRANK_CHALLENGER_SHARE: "50",
    MTRANK_MODEL_POINTERS: {
      get: async (key) => {
        await hooks.pointer?.(key);
        timeline.push(`read ${key}`);
        return env.TEST_POINTERS.get(key);
      },
    },
    MTRANK_MODELS: {
      get: async (key) => {
        timeline.push(`get ${key}`);
        await hooks.object?.(key);
        const object = await env.TEST_MODELS.get(key);
        return hooks.answer ? hooks.answer(key, object) : object;
      },
    },
  };
}

/**
 * Each load in the timeline, as [pointer key, prefix], in the order they started, and the most
 * that ran at once. A load runs from its first R2 read under `prefixes[key]` to the swap or
 * rejection of `key`.
 */
function loads(prefixes: Record<string, string>): { started: string[]; most: number } {
  const running = new Set<string>();
  const started: string[] = [];
  let most = 0;
  for (const entry of timeline) {
    const [what, subject] = entry.split(" ") as [string, string];
    if (what === "get") {
      const key = Object.keys(prefixes).find((k) => subject.startsWith(prefixes[k]!));
      if (key && !running.has(key)) {
        running.add(key);
        started.push(`${key} ${prefixes[key]}`);
        most = Math.max(most, running.size);
      }
    } else if (what === "model.swap" || what === "model.rejected") running.delete(subject);
  }
  return { started, most };
}

/** Fails the test instead of hanging when a request waits for a load. */
function promptly<T>(work: Promise<T>, ms = 5_000): Promise<T> {
  return Promise.race([
    work,
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms)),
  ]);
}

/** One app (one isolate): `rerank` posts for `userId` and answers with the model and arm that served. */
function servedApp(binding: EdgeEnv) {
  const app = createApp({ manifest, model: modelBytes });
  const background = backgroundWork();
  const rerank = async (userId = user.id) => {
    const body = rerankBody({ user: { ...user, id: userId }, candidates: candidates(5) });
    const res = await promptly(postRerank(body, async (r) => app.fetch(r, binding, background.ctx)));
    expect(res.status).toBe(200);
    const json = (await res.json()) as RerankBody;
    return { version: json.model.version, arm: res.headers.get("x-mtrank-arm"), fallback: json.fallback };
  };
  return { rerank, ...background };
}

const ticks = (ms = 50) => new Promise((resolve) => setTimeout(resolve, ms));

describe("one graph load at a time per isolate", () => {
  it("a fresh isolate with both pointers loads the champion, then the challenger, never both at once; and so again when both change", async () => {
    const champion = await upload("queue-champion-1", "champion-1");
    const challenger = await upload("queue-challenger-1", "challenger-1");
    await env.TEST_POINTERS.put(CURRENT_POINTER, champion);
    await env.TEST_POINTERS.put(CHALLENGER_POINTER, challenger);
    const { rerank, settle } = servedApp(bindings());

    // The first request is answered by the bundled model; both loads go to its waitUntil.
    expect(await rerank()).toMatchObject({ version: manifest.version, arm: "champion", fallback: false });
    await settle();
    expect(loads({ [CURRENT_POINTER]: champion, [CHALLENGER_POINTER]: challenger })).toEqual({
      started: [`${CURRENT_POINTER} ${champion}`, `${CHALLENGER_POINTER} ${challenger}`],
      most: 1,
    });
    expect(timeline.filter((e) => e.startsWith("model."))).toEqual([
      `model.swap ${CURRENT_POINTER}`,
      `model.swap ${CHALLENGER_POINTER}`,
    ]);
    expect((await rerank()).version).toMatch(/^(champion|challenger)-1$/);
    await settle();

    // A champion refresh and a challenger refresh started by the same request.
    const champion2 = await upload("queue-champion-2", "champion-2");
    const challenger2 = await upload("queue-challenger-2", "challenger-2");
    await env.TEST_POINTERS.put(CURRENT_POINTER, champion2);
    await env.TEST_POINTERS.put(CHALLENGER_POINTER, challenger2);
    timeline = [];
    await rerank();
    await settle();
    expect(loads({ [CURRENT_POINTER]: champion2, [CHALLENGER_POINTER]: challenger2 })).toEqual({
      started: [`${CURRENT_POINTER} ${champion2}`, `${CHALLENGER_POINTER} ${challenger2}`],
      most: 1,
    });
    const versions = new Set<string>();
    for (const id of ["u-1", "u-2", "u-3", "u-4", "u-5", "u-6", "u-7", "u-8"])
      versions.add((await rerank(id)).version);
    expect([...versions].sort()).toEqual(["challenger-2", "champion-2"]);
  });

  it("the champion loads first even when its pointer is read last; requests meanwhile are answered at once", async () => {
    const champion = await upload("queue-champion-slow-kv", "champion-slow-kv");
    const challenger = await upload("queue-challenger-fast-kv", "challenger-fast-kv");
    await env.TEST_POINTERS.put(CURRENT_POINTER, champion);
    await env.TEST_POINTERS.put(CHALLENGER_POINTER, challenger);
    const championRead = gate();
    const { rerank, settle } = servedApp(
      bindings({ pointer: (key) => (key === CURRENT_POINTER ? championRead.opened : Promise.resolve()) }),
    );

    expect(await rerank()).toMatchObject({ version: manifest.version, arm: "champion" });
    await vi.waitFor(() => expect(timeline).toContain(`read ${CHALLENGER_POINTER}`));
    await ticks();
    // The challenger knows its model, but waits while the champion reads its pointer.
    expect(timeline.filter((e) => e.startsWith("get "))).toEqual([]);
    for (const id of ["u-1", "u-2", "u-3"])
      expect(await rerank(id)).toMatchObject({ version: manifest.version, arm: "champion", fallback: false });

    championRead.open();
    await settle();
    expect(loads({ [CURRENT_POINTER]: champion, [CHALLENGER_POINTER]: challenger })).toEqual({
      started: [`${CURRENT_POINTER} ${champion}`, `${CHALLENGER_POINTER} ${challenger}`],
      most: 1,
    });
  });

  it("a challenger load that hangs gives the turn back when its deadline passes: a champion refresh behind it loads then; the hung load stops there", async () => {
    // Long enough for the checks made while it runs, on a loaded machine.
    const TIMEOUT_MS = 2_000;
    const championA = await upload("queue-champion-a", "champion-a");
    const championB = await upload("queue-champion-b", "champion-b");
    const challenger = await upload("queue-challenger-hung", "challenger-hung");
    await env.TEST_POINTERS.put(CURRENT_POINTER, championA);
    await env.TEST_POINTERS.put(CHALLENGER_POINTER, challenger);
    const download = gate(); // the challenger's graph: never sent while the test looks
    const hungKey = `${challenger}model.onnx`;
    const binding = bindings({
      object: (key) => (key === hungKey ? download.opened : Promise.resolve()),
      // What becomes of the hung graph once R2 answers: its body read, or cancelled unread.
      answer: (key, object) =>
        key !== hungKey || !object
          ? object
          : {
              size: object.size,
              text: () => object.text(),
              arrayBuffer: () => {
                timeline.push(`read ${key}`);
                return object.arrayBuffer();
              },
              body: new ReadableStream({
                cancel: () => {
                  timeline.push(`cancel ${key}`);
                  return object.body?.cancel();
                },
              }),
            },
    });
    // The load deadline comes in through the catalog's options (the worker's is 30 s); its clock
    // stands still, so nothing here is passed over for age: only the deadline frees the turn.
    const catalog = modelCatalog(servingModel({ manifest, model: modelBytes }), undefined, {
      loadTimeoutMs: TIMEOUT_MS,
      now: () => 0,
    });
    const work = backgroundWork();
    const choose = async (id: string) => {
      const choice = await promptly(catalog.choose(binding, id, (p) => work.ctx.waitUntil(p)));
      choice.done();
      return choice.model.manifest?.version;
    };

    try {
      expect(await choose("u-1")).toBe(manifest.version);
      await vi.waitFor(() => expect(timeline).toContain(`get ${challenger}model.onnx`));
      expect(timeline).toContain(`model.swap ${CURRENT_POINTER}`);

      // The champion's pointer moves while the challenger's download hangs.
      await env.TEST_POINTERS.put(CURRENT_POINTER, championB);
      expect(await choose("u-2")).toBe("champion-a"); // answered at once by what is loaded
      await vi.waitFor(() => expect(timeline.filter((e) => e === `read ${CURRENT_POINTER}`)).toHaveLength(2));
      await ticks();
      expect(timeline.some((e) => e.startsWith(`get ${championB}`))).toBe(false);
      expect(await choose("u-3")).toBe("champion-a");

      await work.settle();
      const rejected = timeline.indexOf(`model.rejected ${CHALLENGER_POINTER}`);
      expect(rejected).toBeGreaterThan(-1);
      // B's load began once the challenger's deadline passed, its download still hung.
      expect(timeline.findIndex((e) => e.startsWith(`get ${championB}`))).toBeGreaterThan(rejected);
      expect(timeline.filter((e) => e.startsWith("model."))).toEqual([
        `model.swap ${CURRENT_POINTER}`,
        `model.rejected ${CHALLENGER_POINTER}`,
        `model.swap ${CURRENT_POINTER}`,
      ]);
      const error = logged.mock.calls
        .map((c) => JSON.parse(String(c[0])) as Record<string, unknown>)
        .find((l) => l.event === "model.rejected")?.error;
      expect(error).toBe(`DeadlineError: loading ${challenger} took longer than ${TIMEOUT_MS} ms`);
      expect(await choose("u-4")).toBe("champion-b");
    } finally {
      // R2 answers the hung load at last: past its deadline, it cancels the body unread and
      // creates no session beside the loads after it.
      download.open();
      await work.settle();
      await vi.waitFor(() => expect(timeline).toContain(`cancel ${hungKey}`));
      expect(timeline).not.toContain(`read ${hungKey}`);
    }
  });
});
