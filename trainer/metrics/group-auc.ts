/** GAUC: ranking quality within each user or request, as a ranker is judged per list it orders. */
import { auc } from "../core/metrics.ts";

/** Row indices of each group, groups in order of first appearance. */
export function groupRows(groups: readonly string[]): Map<string, number[]> {
  const members = new Map<string, number[]>();
  groups.forEach((g, i) => {
    const list = members.get(g);
    if (list) list.push(i);
    else members.set(g, [i]);
  });
  return members;
}

export interface GroupAuc {
  /** Σ size·AUC / Σ size over groups that hold both classes; NaN when none does. */
  gauc: number;
  /** Groups that held both classes (the others have no AUC and are skipped). */
  groups: number;
  skipped: number;
}

export function groupAucDetail(
  labels: ArrayLike<number>,
  scores: ArrayLike<number>,
  groups: readonly string[],
): GroupAuc {
  if (groups.length !== labels.length)
    throw new Error(`groupAuc: ${labels.length} labels but ${groups.length} group keys`);
  let weighted = 0;
  let weight = 0;
  let counted = 0;
  let skipped = 0;
  for (const idx of groupRows(groups).values()) {
    const value = auc(
      idx.map((i) => labels[i]!),
      idx.map((i) => scores[i]!),
    );
    if (Number.isNaN(value)) {
      skipped++;
      continue;
    }
    weighted += value * idx.length;
    weight += idx.length;
    counted++;
  }
  return { gauc: weight > 0 ? weighted / weight : Number.NaN, groups: counted, skipped };
}

export function groupAuc(
  labels: ArrayLike<number>,
  scores: ArrayLike<number>,
  groups: readonly string[],
): number {
  return groupAucDetail(labels, scores, groups).gauc;
}
