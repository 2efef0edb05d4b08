/**
 * A feature value the model's encoder cannot read (a vector of the wrong length, a numeric
 * feature sent as a string that is no number) is the
 * client's mistake: a 400 naming the field in the request body, not a fallback.
 */
import type { FeatureValueError } from "../../shared/encoder/encode.ts";
import type { Problem } from "../http/problem.ts";
import type { Candidate, RerankRequest } from "../rerank/schema.ts";

/** `scored` are the candidates the encoder saw (deduplicated, filtered): `error.at` indexes them. */
export function featureProblem(
  error: FeatureValueError,
  request: RerankRequest,
  scored: readonly Candidate[],
): Problem {
  const where =
    typeof error.at === "number"
      ? `candidates.${request.candidates.indexOf(scored[error.at]!)}`
      : (error.at ?? "candidates");
  const field = `${where}.features.${error.feature}`;
  return {
    status: 400,
    kind: "invalid-request",
    title: "Invalid request",
    detail: `${field}: ${error.reason}`,
    errors: [{ field, message: error.reason }],
  };
}
