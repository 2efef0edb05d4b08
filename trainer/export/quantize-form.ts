/**
 * Which int8 form the dense layers take (see quantize.ts for "qdq", quantize-integer.ts for
 * "integer"); the embedding table is int8 with per-(slot, column) scales in both.
 */
import type { GraphBuilder } from "./onnx-graph.ts";
import { int8KernelsBuilder } from "./quantize.ts";
import { integerKernelsBuilder } from "./quantize-integer.ts";

export const INT8_FORMS = ["qdq", "integer"] as const;
export type Int8Form = (typeof INT8_FORMS)[number];

/** The default of `export --int8`: the form measured faster in onnxruntime-web (npm run bench:int8). */
export const DEFAULT_INT8_FORM: Int8Form = "integer";

/** A view of `g` that stores dense kernels as int8 in the given form. */
export function int8DenseBuilder(g: GraphBuilder, form: Int8Form = DEFAULT_INT8_FORM): GraphBuilder {
  return form === "integer" ? integerKernelsBuilder(g) : int8KernelsBuilder(g);
}

/** Parses a form name (the CLI's --int8-form), naming the allowed values when it is not one. */
export function parseInt8Form(value: string): Int8Form {
  if ((INT8_FORMS as readonly string[]).includes(value)) return value as Int8Form;
  throw new Error(`--int8-form: expected one of ${INT8_FORMS.join(", ")}, got "${value}"`);
}
