/**
 * The local registry outlives its workerd: a registry whose workerd process died answers the
 * next call from a fresh workerd on the same state instead of failing every call after it, and a
 * call that does not answer in time is tried on a fresh one, then fails naming the call, instead
 * of waiting forever. workerd has crashed on SQLite contention with another process on one state
 * folder (trainer/pipeline/registry/local.ts). A workerd stopped outright (SIGSTOP) is beyond
 * this: miniflare's binding proxies read properties with a synchronous request, which blocks the
 * whole event loop until workerd answers.
 */
import { execFileSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalRegistry } from "../../trainer/pipeline/registry/local.ts";

let tmp: string;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), "mtrank-local-recovery-"));
});

afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

/** This process's workerd children (vitest runs each file in a process of its own). */
function workerdChildren(): number[] {
  let out = "";
  try {
    out = execFileSync("ps", ["-o", "pid=,comm=", "--ppid", String(process.pid)], { encoding: "utf8" });
  } catch {
    // ps exits 1 when there are none.
  }
  return out
    .split("\n")
    .filter((line) => line.includes("workerd"))
    .map((line) => Number(line.trim().split(/\s+/)[0]));
}

/** Opens `registry` (a put) and returns the workerd it started. */
async function openedWorkerd(registry: LocalRegistry, key: string, bytes: Uint8Array): Promise<number> {
  const before = new Set(workerdChildren());
  await registry.put(key, bytes);
  const started = workerdChildren().filter((pid) => !before.has(pid));
  expect(started).toHaveLength(1);
  return started[0]!;
}

describe("the local registry when its workerd dies or hangs", () => {
  it("a killed workerd: the next calls start a fresh one and read what was written", async () => {
    const logged: string[] = [];
    const registry = new LocalRegistry({ persistTo: join(tmp, "killed"), log: (line) => logged.push(line) });
    try {
      const bytes = new Uint8Array([1, 2, 3, 4]);
      const pid = await openedWorkerd(registry, "a/file", bytes);
      await registry.setPointer("models/current", "a/");
      // A new folder: the first start says so, and nothing else was logged.
      expect(logged).toEqual([expect.stringMatching(/killed holds no wrangler state yet/)]);
      logged.length = 0;
      process.kill(pid, "SIGKILL");
      await new Promise((done) => setTimeout(done, 200));
      expect((await registry.get("a/file"))?.bytes).toEqual(bytes);
      // The call that met the dead workerd said so, and that a fresh one took over.
      expect(logged[0]).toMatch(
        /^local registry: get a\/file: try 1 of 5 failed \(.+\); trying again on a fresh workerd$/,
      );
      expect(await registry.getPointer("models/current")).toBe("a/");
      expect(workerdChildren()).not.toContain(pid);
      expect(await registry.put("a/other", bytes, { ifAbsent: true })).toBe(true);
      expect(await registry.put("a/other", bytes, { ifAbsent: true })).toBe(false);
    } finally {
      await registry.close();
    }
  }, 60_000);

  it("a call that does not answer in time is tried on a fresh workerd, and fails naming the call", async () => {
    // No call answers within 1 ms: every try runs out of time and stops its workerd.
    const logged: string[] = [];
    const registry = new LocalRegistry({
      persistTo: join(tmp, "slow"),
      callTimeoutMs: 1,
      log: (line) => logged.push(line),
    });
    const before = new Set(workerdChildren());
    try {
      const started = performance.now();
      await expect(registry.get("c/file")).rejects.toThrow(
        /^local registry: get c\/file failed after 5 tries: did not answer within 0.001 s$/,
      );
      expect((performance.now() - started) / 1000).toBeLessThan(40);
      // Tries 1-4 each told, the last one's failure is the error (after the new folder's line).
      expect(logged.filter((line) => !line.includes("holds no wrangler state yet"))).toEqual(
        [1, 2, 3, 4].map(
          (n) =>
            `local registry: get c/file: try ${n} of 5 failed (did not answer within 0.001 s); trying again on a fresh workerd`,
        ),
      );
    } finally {
      await registry.close();
    }
    // Each timed-out try's workerd was stopped, not left running beside the next.
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && workerdChildren().some((pid) => !before.has(pid)))
      await new Promise((done) => setTimeout(done, 100));
    expect(workerdChildren().filter((pid) => !before.has(pid))).toEqual([]);
  }, 60_000);
});
