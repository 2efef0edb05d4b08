/**
 * The feature names a rerank request sends that the model never reads, reported back to the
 * client (docs/http-api.md, `ignored`): a typo (`"contry"` for `"country"`) or a feature sent in
 * the wrong place (a context feature in `user.features`) otherwise scores as a missing value
 * without a word.
 *
 * Such a name is not an error: clients often send one superset of features to models with
 * different feature sets (an A/B test between them), and a 4xx would break them. Nothing else
 * reads these names: the encoder looks up only the manifest's features, each as an own property
 * of the place its side names (shared/encoder/encode.ts), and neither the log nor anything kept
 * beyond the request holds a request's feature names.
 *
 * Bounded: at most MAX_LISTED names, each cut to MAX_NAME_LENGTH characters, and the scan stops
 * at the first name past the list; a name already listed, or known, costs one Set lookup.
 */
import type { FeatureLayout } from "../../shared/encoder/state.ts";

/** Names listed at most; `more` says when there were others. */
export const MAX_LISTED = 10;
/** Characters of a name kept in the list; a longer one is cut and ends in "…". */
export const MAX_NAME_LENGTH = 64;

/** The feature names the model reads from each place of a request. */
export interface KnownFeatures {
  user: ReadonlySet<string>;
  context: ReadonlySet<string>;
  item: ReadonlySet<string>;
}

export interface IgnoredFeatures {
  /**
   * Where each ignored name was sent: `user.features.<name>`, `context.features.<name>`, or
   * `candidates.*.features.<name>` (in one candidate or more), in the order first met.
   */
  features: string[];
  /** Further names were ignored beyond those listed. */
  more: boolean;
}

/** The encoder's reading: `user` features from user.features, `item` from candidates, any other side from context. */
export function knownFeatures(features: readonly Pick<FeatureLayout, "name" | "side">[]): KnownFeatures {
  const known = { user: new Set<string>(), context: new Set<string>(), item: new Set<string>() };
  for (const f of features) known[f.side === "user" || f.side === "item" ? f.side : "context"].add(f.name);
  return known;
}

/**
 * The names of `body` (a request the schema accepted, read as JSON.parse gave it, so names the
 * schema's output drops, such as `__proto__`, count too) that the model does not read where
 * they were sent; undefined when there are none. A candidate feature a filter names is read, by
 * the filter. Never throws on an unexpected shape: such a part is skipped.
 */
export function ignoredFeatures(
  body: unknown,
  known: KnownFeatures,
  filterFields: readonly string[] = [],
): IgnoredFeatures | undefined {
  const listed: string[] = [];
  let more = false;

  /** Lists the unknown names of one features object; false once the list is full. */
  function scan(features: unknown, names: ReadonlySet<string>, where: string, seen?: Set<string>): boolean {
    if (!isPlainObject(features)) return true;
    for (const name in features) {
      if (names.has(name) || seen?.has(name)) continue;
      if (listed.length === MAX_LISTED) {
        more = true;
        return false;
      }
      seen?.add(name);
      listed.push(`${where}.${shortName(name)}`);
    }
    return true;
  }

  const request = isPlainObject(body)
    ? (body as { user?: unknown; context?: unknown; candidates?: unknown })
    : {};
  const user = isPlainObject(request.user) ? (request.user as { features?: unknown }) : {};
  const context = isPlainObject(request.context) ? (request.context as { features?: unknown }) : {};
  if (
    scan(user.features, known.user, "user.features") &&
    scan(context.features, known.context, "context.features")
  ) {
    const candidates = Array.isArray(request.candidates) ? request.candidates : [];
    // A name is listed once however many candidates carry it; filters read theirs.
    const seen = new Set(filterFields);
    for (let i = 0; i < candidates.length; i++) {
      const candidate: unknown = candidates[i];
      if (!isPlainObject(candidate)) continue;
      if (!scan((candidate as { features?: unknown }).features, known.item, "candidates.*.features", seen))
        break;
    }
  }
  return listed.length > 0 ? { features: listed, more } : undefined;
}

/** At most MAX_NAME_LENGTH characters, never half a surrogate pair, "…" when cut. */
function shortName(name: string): string {
  if (name.length <= MAX_NAME_LENGTH) return name;
  let end = MAX_NAME_LENGTH;
  const last = name.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end -= 1;
  return `${name.slice(0, end)}…`;
}

/** An object from JSON.parse: its prototype is Object.prototype (not an array, not null). */
function isPlainObject(value: unknown): value is object {
  return typeof value === "object" && value !== null && Object.getPrototypeOf(value) === Object.prototype;
}
