/**
 * Finds the list to rerank in an origin's JSON body and turns its items into candidates. Any
 * doubt (no array there, an item without a usable id, a repeated id) means "not a list we can
 * rerank", and the response passes through unchanged.
 */
import { type FeatureValue, isFeatureValue } from "../rerank/candidate-check.ts";
import { type Candidate, MAX_LIST } from "../rerank/schema.ts";
import type { ProxyRouteConfig } from "./config.ts";

type Json = unknown;

export interface FoundList {
  items: Json[];
  candidates: Candidate[];
  /** The body with the list replaced by `reordered`. */
  replace(reordered: Json[]): Json;
}

export function findList(body: Json, route: ProxyRouteConfig): FoundList | undefined {
  const keys = route.list === "" ? [] : route.list.split(".");
  let parent: Json;
  let node: Json = body;
  for (const key of keys) {
    if (node === null || typeof node !== "object" || Array.isArray(node)) return undefined;
    parent = node;
    node = (node as Record<string, Json>)[key];
  }
  if (!Array.isArray(node)) return undefined;
  const items = node;
  const candidates: Candidate[] = [];
  const seen = new Set<string>();
  for (const item of items) {
    const candidate = toCandidate(item, route);
    if (!candidate || seen.has(candidate.id)) return undefined;
    seen.add(candidate.id);
    candidates.push(candidate);
  }
  const last = keys.at(-1);
  return {
    items,
    candidates,
    replace(reordered) {
      if (last === undefined) return reordered;
      (parent as Record<string, Json>)[last] = reordered;
      return body;
    },
  };
}

function toCandidate(item: Json, route: ProxyRouteConfig): Candidate | undefined {
  if (item === null || typeof item !== "object" || Array.isArray(item)) return undefined;
  const record = item as Record<string, Json>;
  const id = record[route.id];
  if (!((typeof id === "string" && id !== "") || (typeof id === "number" && Number.isFinite(id))))
    return undefined;
  const source = route.features === undefined ? record : record[route.features];
  const features: Record<string, FeatureValue> = {};
  if (source !== null && typeof source === "object" && !Array.isArray(source))
    for (const [k, value] of Object.entries(source as Record<string, Json>))
      if (isFeatureValue(value, MAX_LIST) && !(route.features === undefined && k === route.id))
        features[k] = value;
  return { id: String(id), features };
}
