/** Turns valibot issues into one readable line that names the offending field. */
import * as v from "valibot";

export interface FieldIssue {
  /** Dot path of the offending field ("" for the root), e.g. "candidates.3.features". */
  field: string;
  message: string;
}

export function describeIssues(issues: readonly v.BaseIssue<unknown>[]): FieldIssue[] {
  return issues.map((issue) => {
    const field = v.getDotPath(issue) ?? issue.path?.map((p) => String(p.key)).join(".") ?? "";
    return { field, message: issue.message };
  });
}

export function formatIssue(issue: FieldIssue): string {
  return issue.field ? `${issue.field}: ${issue.message}` : issue.message;
}
