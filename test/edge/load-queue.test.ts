/**
 * The isolate's load queue (edge/model/load-queue.ts): one graph load at a time, the lower rank
 * (the champion) first, and a turn that a stopped refresh never gives back passed over. Then two
 * slots sharing one, with the test's clock: a challenger refresh the runtime stopped while it
 * held the turn (its deadline never fires) keeps the champion out for no longer than the
 * abandon rule.
 */
import { describe, expect, it, vi } from "vitest";
import { loadQueue } from "../../edge/model/load-queue.ts";
import { modelSlot, type SlotSettings } from "../../edge/model/slot.ts";
import type { ModelStore } from "../../edge/model/store.ts";
import { logLines } from "./log-lines.ts";

const LIMIT = 1_000;

/** What has settled so far: `turn` promises record themselves here when they resolve or reject. */
function watched() {
  const order: string[] = [];
  const watch = (name: string, turn: Promise<void>) =>
    turn.then(
      () => order.push(name),
      () => order.push(`${name} left`),
    );
  return { order, watch };
}

const ticks = () => new Promise((resolve) => setTimeout(resolve, 0));

describe("the load queue", () => {
  it("gives one turn at a time, the next when the holder leaves", async () => {
    const queue = loadQueue({ now: () => 0 });
    const { order, watch } = watched();
    const a = queue.join(0, LIMIT);
    const b = queue.join(0, LIMIT);
    watch("b", b.turn());
    watch("a", a.turn());
    await ticks();
    expect(order).toEqual(["a"]);
    a.leave();
    a.leave(); // a second call counts once
    await ticks();
    expect(order).toEqual(["a", "b"]);
  });

  it("a lower rank that joined later goes first; one that has not asked yet holds back a higher rank that has", async () => {
    const queue = loadQueue({ now: () => 0 });
    const { order, watch } = watched();
    const challenger = queue.join(1, LIMIT);
    const champion = queue.join(0, LIMIT); // still reading its pointer
    watch("challenger", challenger.turn());
    await ticks();
    expect(order).toEqual([]);
    watch("champion", champion.turn());
    await ticks();
    expect(order).toEqual(["champion"]);
    champion.leave();
    await ticks();
    expect(order).toEqual(["champion", "challenger"]);
  });

  it("a place left without loading lets the next go", async () => {
    const queue = loadQueue({ now: () => 0 });
    const { order, watch } = watched();
    const champion = queue.join(0, LIMIT);
    const challenger = queue.join(1, LIMIT);
    watch("challenger", challenger.turn());
    champion.leave(); // its pointer had not changed
    await ticks();
    expect(order).toEqual(["challenger"]);
  });

  it("a lower rank does not wait for a higher one that has not asked, only for one holding the turn", async () => {
    const queue = loadQueue({ now: () => 0 });
    const { order, watch } = watched();
    const challenger = queue.join(1, LIMIT);
    watch("champion", queue.join(0, LIMIT).turn());
    await ticks();
    expect(order).toEqual(["champion"]);

    const second = loadQueue({ now: () => 0 });
    const loading = second.join(1, LIMIT);
    watch("challenger loads", loading.turn());
    const champion = second.join(0, LIMIT);
    watch("champion waits", champion.turn());
    await ticks();
    expect(order).toEqual(["champion", "challenger loads"]);
    loading.leave();
    await ticks();
    expect(order).toEqual(["champion", "challenger loads", "champion waits"]);
    challenger.leave();
  });

  it("a ticket that leaves while waiting, or asks after leaving, is refused its turn", async () => {
    const queue = loadQueue({ now: () => 0 });
    const { order, watch } = watched();
    const holder = queue.join(0, LIMIT);
    watch("holder", holder.turn());
    const waiting = queue.join(0, LIMIT);
    watch("waiting", waiting.turn());
    waiting.leave();
    const gone = queue.join(0, LIMIT);
    gone.leave();
    watch("gone", gone.turn());
    await ticks();
    expect(order).toEqual(["holder", "waiting left", "gone left"]);
  });

  it("a turn held past its limit is passed over at the next join or ask", async () => {
    let t = 0;
    const queue = loadQueue({ now: () => t });
    const { order, watch } = watched();
    watch("stopped", queue.join(0, LIMIT).turn()); // never leaves: the runtime ended its refresh
    const next = queue.join(0, LIMIT);
    watch("next", next.turn());
    t = LIMIT; // at the limit, not past it
    const third = queue.join(0, LIMIT);
    watch("third", third.turn());
    await ticks();
    expect(order).toEqual(["stopped"]);
    t = LIMIT + 1;
    next.turn(); // asking again looks at the queue again
    await ticks();
    expect(order).toEqual(["stopped", "next"]);
    next.leave();
    await ticks();
    expect(order).toEqual(["stopped", "next", "third"]);
    third.leave();
  });

  it("a place that has not asked for its turn holds back a higher rank for no longer than its limit", async () => {
    let t = 0;
    const queue = loadQueue({ now: () => t });
    const { order, watch } = watched();
    const reading = queue.join(0, LIMIT); // its refresh stopped while it read its pointer
    const challenger = queue.join(1, LIMIT);
    watch("challenger", challenger.turn());
    t = LIMIT;
    challenger.turn();
    await ticks();
    expect(order).toEqual([]);
    t = LIMIT + 1;
    challenger.turn();
    await ticks();
    expect(order).toEqual(["challenger"]);
    challenger.leave();
    reading.leave();
  });
});

const log = logLines();
const SETTINGS: SlotSettings = { refreshSeconds: 1, maxModelBytes: 1 << 20, maxManifestBytes: 1 << 20 };
/** Longer than the test: the deadline timers never fire, as when the runtime drops them. */
const TIMEOUT_MS = 60_000;

describe("two slots sharing a load queue", () => {
  it("a challenger load stopped while it held the turn keeps the champion out for three load timeouts at most", async () => {
    let t = 0;
    const now = () => t;
    const loads = loadQueue({ now });
    const never = new Promise<null>(() => undefined);
    const gets: string[] = [];
    const store = (pointer: string): ModelStore => ({
      pointers: { get: async () => pointer },
      bucket: {
        get: vi.fn(async (key: string) => {
          gets.push(key);
          // The challenger's download never answers; the champion's files are not there.
          return key.startsWith("models/chall") ? never : null;
        }),
      },
      weights: "float32",
    });
    const options = { now, loadTimeoutMs: TIMEOUT_MS, loads };
    const champion = modelSlot("models/current", undefined, { ...options, loadRank: 0 });
    const challenger = modelSlot("models/challenger", undefined, { ...options, loadRank: 1 });

    challenger.current(store("models/chall-1/"), SETTINGS);
    await vi.waitFor(() => expect(gets).toEqual(["models/chall-1/manifest.json"]));
    // The challenger is then never asked again (its share set to 0): only the champion is.
    t = 1;
    champion.current(store("models/champ-1/"), SETTINGS);
    await ticks();
    expect(gets).toHaveLength(1); // waiting for its turn
    t = 3 * TIMEOUT_MS + 1;
    champion.current(store("models/champ-1/"), SETTINGS); // still within its three timeouts
    await ticks();
    expect(gets).toHaveLength(1);
    t = 3 * TIMEOUT_MS + 2;
    champion.current(store("models/champ-1/"), SETTINGS); // abandoned; the next refresh passes the challenger over
    await vi.waitFor(() =>
      expect(gets).toEqual(["models/chall-1/manifest.json", "models/champ-1/manifest.json"]),
    );
    expect(log.events("model.refresh_abandoned")).toMatchObject([{ pointerKey: "models/current" }]);
    await vi.waitFor(() => expect(log.events("model.rejected")).toHaveLength(1));
    expect(String(log.events("model.rejected")[0]!.error)).toMatch(
      /R2 has no models\/champ-1\/manifest\.json/,
    );
  });
});
