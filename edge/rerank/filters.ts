/** Request filters on candidate features: a candidate failing any filter is not scored or returned. */
import type { Candidate, CandidateFilter } from "./schema.ts";

/** A list value (bag or vector feature) never equals, is never in, and never compares with a filter value. */
type Value = string | number | boolean | null | undefined | readonly (string | number | boolean | null)[];
type Predicate = (value: Value) => boolean;

function predicate(filter: CandidateFilter): Predicate {
  const { op, value } = filter;
  switch (op) {
    case "eq":
      return (x) => x === value;
    case "ne":
      return (x) => x !== value;
    case "in": {
      const set = new Set(value as readonly Value[]);
      return (x) => set.has(x);
    }
    case "not_in": {
      const set = new Set(value as readonly Value[]);
      return (x) => !set.has(x);
    }
    default: {
      // lt / lte / gt / gte: numbers only; a missing or non-numeric value fails.
      const bound = value as number;
      const compare = {
        lt: (x: number) => x < bound,
        lte: (x: number) => x <= bound,
        gt: (x: number) => x > bound,
        gte: (x: number) => x >= bound,
      }[op];
      return (x) => typeof x === "number" && compare(x);
    }
  }
}

export function applyFilters(
  candidates: readonly Candidate[],
  filters: readonly CandidateFilter[] | undefined,
): { kept: Candidate[]; filtered: number } {
  if (!filters || filters.length === 0) return { kept: [...candidates], filtered: 0 };
  const checks = filters.map((f) => ({ field: f.field, test: predicate(f) }));
  const kept = candidates.filter((c) => checks.every(({ field, test }) => test(c.features?.[field])));
  return { kept, filtered: candidates.length - kept.length };
}
