/**
 * valibot -> JSON Schema 2020-12 (the dialect of OpenAPI 3.1) with @valibot/to-json-schema.
 * Conversion errors are thrown, so a rule added to a schema that JSON Schema cannot say fails
 * the tests instead of vanishing from the document; the few known ones are mapped here.
 */
import { type JsonSchema, toJsonSchema } from "@valibot/to-json-schema";
import type * as v from "valibot";

type AnySchema = v.BaseSchema<unknown, unknown, v.BaseIssue<unknown>>;

function withNote(schema: JsonSchema, note: string): JsonSchema {
  return { ...schema, description: schema.description ? `${schema.description} ${note}` : note };
}

export function jsonSchemaOf(schema: AnySchema): JsonSchema {
  return toJsonSchema(schema, {
    target: "draft-2020-12",
    errorMode: "throw",
    overrideAction({ valibotAction, jsonSchema }) {
      // JSON has no NaN or Infinity, so every JSON number already satisfies finite().
      if (valibotAction.type === "finite") return jsonSchema;
      // Cross-field checks (filters' op vs value) cannot be expressed; say them in words.
      if (valibotAction.type === "check") {
        const message = (valibotAction as { message?: unknown }).message;
        return withNote(jsonSchema, typeof message === "string" ? `${message}.` : "");
      }
      return undefined;
    },
    overrideSchema({ valibotSchema, jsonSchema }) {
      // A record keyed by a picklist (weights by head name) converts to propertyNames: {enum};
      // the library flags it only because JSON Schema cannot also demand every key.
      const key = (valibotSchema as { key?: { type?: string } }).key;
      if (valibotSchema.type === "record" && key?.type === "picklist") return jsonSchema;
      return undefined;
    },
  });
}
