/** Turns valibot issues into one readable line that names the offending field. */
import * as v from "valibot";

/**
 * Names a JSON object key cannot carry through a JavaScript object parser: valibot's record (the
 * worker's request schema) drops them, and `__proto__` sets an object's prototype when assigned.
 * A feature or task so named would be read by the trainer and silently ignored in requests, so
 * the dataset spec refuses them and the worker refuses a manifest that uses one.
 */
export const RESERVED_NAMES: ReadonlySet<string> = new Set(["__proto__", "constructor", "prototype"]);

export interface FieldIssue {
  /** Dot path of the offending field ("" for the root), e.g. "candidates.3.features". */
  field: string;
  message: string;
}

export function describeIssues(issues: readonly v.BaseIssue<unknown>[]): FieldIssue[] {
  return issues.map((issue) => {
    const field = v.getDotPath(issue) ?? issue.path?.map((p) => String(p.key)).join(".") ?? "";
    return { field, message: plainMessage(issue) };
  });
}

const OBJECT_TYPES = new Set(["object", "strict_object", "loose_object", "object_with_rest"]);

/**
 * valibot's default words for a key problem ("Invalid key: Expected never but received \"x\"")
 * read as a riddle; say what a person fixing a JSON file needs. Messages a schema set itself
 * are kept as they are.
 */
function plainMessage(issue: v.BaseIssue<unknown>): string {
  if (issue.message.startsWith("Invalid type:") && issue.expected !== null)
    return `expected ${issue.expected}, got ${issue.received}`;
  if (!OBJECT_TYPES.has(issue.type) || !issue.message.startsWith("Invalid key:")) return issue.message;
  if (issue.expected === "never") return "unknown field";
  if (issue.received === "undefined") return "required field missing";
  return issue.message;
}

export function formatIssue(issue: FieldIssue): string {
  return issue.field ? `${issue.field}: ${issue.message}` : issue.message;
}
