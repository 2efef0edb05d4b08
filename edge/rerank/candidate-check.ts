/**
 * A fast, conservative check of the candidates array: true only for input the valibot
 * `Candidate` schema (schema.ts) accepts unchanged, so the request schema can skip it.
 * Anything unusual (a reserved key, a non-plain object, a value it does not know) answers false
 * and valibot decides, with its own messages. Measured: valibot's per-candidate object and record
 * copies cost 1.3 ms at 200 candidates and 9.7 ms at 1,000 in Node (bench/edge-request.ts).
 */

/** Keys valibot's record drops from its output: a candidate holding one is left to valibot. */
const RESERVED = new Set(["__proto__", "prototype", "constructor"]);

export function candidatesAreValid(candidates: unknown, maxCandidates: number, maxList: number): boolean {
  if (!Array.isArray(candidates) || candidates.length > maxCandidates) return false;
  for (let i = 0; i < candidates.length; i++) if (!candidateIsValid(candidates[i], maxList)) return false;
  return true;
}

function candidateIsValid(candidate: unknown, maxList: number): boolean {
  if (!isPlainObject(candidate)) return false;
  let keys = 0;
  for (const key in candidate) {
    if (key !== "id" && key !== "features") return false;
    keys++;
  }
  const { id, features } = candidate as { id?: unknown; features?: unknown };
  if (typeof id !== "string" || id.length === 0) return false;
  if (features === undefined) return keys === 1;
  if (!isPlainObject(features)) return false;
  for (const name in features) {
    if (RESERVED.has(name)) return false;
    if (!isFeatureValue((features as Record<string, unknown>)[name], maxList)) return false;
  }
  return true;
}

type Scalar = string | number | boolean | null;
/** A feature's value in a request: one value, or a bag's or vector's list of them. */
export type FeatureValue = Scalar | Scalar[];

/** One value (a string, a finite number, a boolean, null) or a list of at most `maxList` of them. */
export function isFeatureValue(value: unknown, maxList: number): value is FeatureValue {
  if (!Array.isArray(value)) return isScalar(value);
  if (value.length > maxList) return false;
  for (let k = 0; k < value.length; k++) if (!isScalar(value[k])) return false;
  return true;
}

function isScalar(value: unknown): boolean {
  switch (typeof value) {
    case "string":
    case "boolean":
      return true;
    case "number":
      return Number.isFinite(value);
    default:
      return value === null;
  }
}

/** An object from JSON.parse: its prototype is Object.prototype (not an array, not null). */
function isPlainObject(value: unknown): value is object {
  return typeof value === "object" && value !== null && Object.getPrototypeOf(value) === Object.prototype;
}
