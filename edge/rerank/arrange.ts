/** Final positions: pinned candidates where the request puts them, the rest in ranked order, then topK. */
import type { Candidate, Pin } from "./schema.ts";

/**
 * `order` lists candidate indices best first. A pin whose id is not among the candidates is
 * ignored; two pins asking for one position keep their request order; a position past the end
 * of the list appends the pin at the end.
 */
export function arrange(
  order: readonly number[],
  candidates: readonly Candidate[],
  pinned: readonly Pin[] | undefined,
  topK: number | undefined,
): number[] {
  let result: number[] = [...order];
  if (pinned && pinned.length > 0) {
    const indexOf = new Map(candidates.map((c, i) => [c.id, i]));
    const pins = pinned
      .map((p, k) => ({ index: indexOf.get(p.id), position: p.position, k }))
      .filter((p): p is { index: number; position: number; k: number } => p.index !== undefined)
      .sort((a, b) => a.position - b.position || a.k - b.k);
    const pinnedSet = new Set(pins.map((p) => p.index));
    const rest = order.filter((i) => !pinnedSet.has(i));
    result = [];
    let next = 0;
    for (const pin of pins) {
      if (result.includes(pin.index)) continue; // the same id pinned twice: the pin at the lower position wins (pins are sorted)
      while (result.length < pin.position && next < rest.length) result.push(rest[next++]!);
      result.push(pin.index);
    }
    while (next < rest.length) result.push(rest[next++]!);
  }
  return topK === undefined ? result : result.slice(0, topK);
}
