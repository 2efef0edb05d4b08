/**
 * Platt scaling of binary heads: served p = σ(scale·z + shift) on the head's logit z, the two
 * numbers fitted on the validation rows after training (Newton's method on log loss). The
 * weighted fusion at the edge adds probabilities across heads, so a head that over-predicts by
 * 25% (seen on the simulator at the early-stopped epoch, every architecture) tilts every ranking;
 * a positive scale keeps each head's order, so AUC and GAUC do not change.
 */

export interface PlattScaling {
  scale: number;
  shift: number;
}

export const IDENTITY: PlattScaling = { scale: 1, shift: 0 };

/** Logits of probabilities, clipped so that saturated outputs stay finite. */
export function logitsOf(probabilities: ArrayLike<number>): Float64Array {
  const eps = 1e-7;
  return Float64Array.from({ length: probabilities.length }, (_, i) => {
    const p = Math.min(1 - eps, Math.max(eps, probabilities[i]!));
    return Math.log(p / (1 - p));
  });
}

/**
 * The scale and shift minimising the log loss of σ(scale·z + shift) against the labels. The
 * identity when the labels have one class, when the logits separate the classes (no finite
 * fit), or when the fit would reverse the order (scale ≤ 0): a head with no signal on
 * validation keeps its own outputs.
 */
export function fitPlatt(labels: ArrayLike<number>, logits: ArrayLike<number>): PlattScaling {
  const n = labels.length;
  let positives = 0;
  for (let i = 0; i < n; i++) positives += labels[i]! > 0.5 ? 1 : 0;
  if (positives === 0 || positives === n) return IDENTITY;
  // Every positive's logit above every negative's (a validation part of a few rows): the log loss
  // falls as the scale grows without end, and the fit would stop at a huge scale that the ridge
  // barely holds, serving near-0/1 probabilities. Keep the head's own outputs.
  let lowestPositive = Number.POSITIVE_INFINITY;
  let highestNegative = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < n; i++) {
    if (labels[i]! > 0.5) lowestPositive = Math.min(lowestPositive, logits[i]!);
    else highestNegative = Math.max(highestNegative, logits[i]!);
  }
  if (highestNegative < lowestPositive) return IDENTITY;
  // A small ridge towards the identity keeps the Newton system solvable on separable data.
  const ridge = 1e-6 * n;
  const objective = (a: number, b: number) =>
    logLoss(labels, logits, a, b) + (ridge / 2) * ((a - 1) ** 2 + b ** 2);
  let a = 1;
  let b = 0;
  let loss = objective(a, b);
  for (let iter = 0; iter < 100; iter++) {
    let ga = ridge * (a - 1);
    let gb = ridge * b;
    let haa = ridge;
    let hab = 0;
    let hbb = ridge;
    for (let i = 0; i < n; i++) {
      const z = logits[i]!;
      const p = sigmoid(a * z + b);
      const r = p - (labels[i]! > 0.5 ? 1 : 0);
      const w = p * (1 - p);
      ga += r * z;
      gb += r;
      haa += w * z * z;
      hab += w * z;
      hbb += w;
    }
    const det = haa * hbb - hab * hab;
    if (!(det > 0)) break;
    const da = (hbb * ga - hab * gb) / det;
    const db = (haa * gb - hab * ga) / det;
    // Halve the Newton step until the loss does not rise.
    let step = 1;
    let next = Number.POSITIVE_INFINITY;
    for (; step > 1e-6; step /= 2) {
      next = objective(a - step * da, b - step * db);
      if (next <= loss) break;
    }
    if (!(next <= loss)) break;
    a -= step * da;
    b -= step * db;
    const improved = loss - next;
    loss = next;
    if (Math.abs(step * da) + Math.abs(step * db) < 1e-10 || improved < 1e-12 * n) break;
  }
  return a > 0 && Number.isFinite(a) && Number.isFinite(b) ? { scale: a, shift: b } : IDENTITY;
}

/** The served probabilities σ(scale·z + shift) for logits z (what headOutput computes). */
export function applyPlatt(fit: PlattScaling, logits: ArrayLike<number>): Float32Array {
  return Float32Array.from({ length: logits.length }, (_, i) => sigmoid(fit.scale * logits[i]! + fit.shift));
}

function sigmoid(x: number): number {
  return x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
}

/** Σ log loss of σ(a·z + b), computed stably from the logit. */
function logLoss(labels: ArrayLike<number>, logits: ArrayLike<number>, a: number, b: number): number {
  let sum = 0;
  for (let i = 0; i < labels.length; i++) {
    const t = a * logits[i]! + b;
    // -log σ(t) = softplus(-t); -log(1 - σ(t)) = softplus(t)
    sum += labels[i]! > 0.5 ? softplus(-t) : softplus(t);
  }
  return sum;
}

function softplus(x: number): number {
  return x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x));
}
