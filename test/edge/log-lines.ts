/** The worker's JSON log lines in a test file: console.log spied around each of its tests. */
import { afterEach, beforeEach, type MockInstance, vi } from "vitest";

export interface LogLines {
  /** The lines the current test logged, parsed. */
  all(): Record<string, unknown>[];
  /** Those of one event. */
  events(name: string): Record<string, unknown>[];
}

/** Spies on console.log before each test of the calling file (then runs `setup`), restores it after. */
export function logLines(setup?: () => Promise<unknown>): LogLines {
  let logged: MockInstance<typeof console.log> | undefined;
  beforeEach(async () => {
    logged = vi.spyOn(console, "log").mockImplementation(() => undefined);
    await setup?.();
  });
  afterEach(() => {
    logged?.mockRestore();
  });
  const all = () =>
    (logged?.mock.calls ?? []).map((call) => JSON.parse(String(call[0])) as Record<string, unknown>);
  return { all, events: (name) => all().filter((line) => line.event === name) };
}
