/**
 * Which int8 form the dense layers take (see quantize.ts for "qdq", quantize-integer.ts for
 * "integer"); the embedding table is int8 with per-(slot, column) scales in both.
 */
import type { GraphBuilder } from "../core/onnx-graph.ts";
import { int8KernelsBuilder } from "./quantize.ts";
import { type GroupedInput, integerKernelsBuilder } from "./quantize-integer.ts";

export const INT8_FORMS = ["qdq", "integer"] as const;
export type Int8Form = (typeof INT8_FORMS)[number];

/**
 * The default of `export --int8`: the faster form in onnxruntime-web (npm run bench:int8, reference
 * MMoE, wasm, 1 thread, p50 vs float32 at 10/100/200/500/1,000 candidates: integer x1.19, x0.75,
 * x0.73, x0.66, x0.64; qdq x1.88, x1.22, x1.17, x1.07, x1.04; measured with ReLU as Max, which
 * sped float32 up more than int8 — before it, integer was x0.48-0.67). The price: activations are
 * quantized too, so its max |Δp| is about twice qdq's (0.0016-0.0043 vs 0.0005-0.0011 on the
 * simulator models; AUC within 0.001 of float32 for both). Quantizing the network input in one
 * piece, numbers and embeddings together, had cost 10x (0.006-0.016): see GroupedInput.
 */
export const DEFAULT_INT8_FORM: Int8Form = "integer";

/** A view of `g` that stores dense kernels as int8 in the given form. */
export function int8DenseBuilder(
  g: GraphBuilder,
  form: Int8Form = DEFAULT_INT8_FORM,
  grouped?: GroupedInput,
): GraphBuilder {
  return form === "integer" ? integerKernelsBuilder(g, grouped) : int8KernelsBuilder(g);
}

/** Parses a form name (the CLI's --int8-form), naming the allowed values when it is not one. */
export function parseInt8Form(value: string): Int8Form {
  if ((INT8_FORMS as readonly string[]).includes(value)) return value as Int8Form;
  throw new Error(`--int8-form: expected one of ${INT8_FORMS.join(", ")}, got "${value}"`);
}
