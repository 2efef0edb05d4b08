/**
 * GET /openapi.json: generated from the valibot schemas that validate requests, so the document
 * and the validator must agree — checked here by running both on the same bodies, with an
 * independent JSON Schema validator (@cfworker/json-schema, no code generation, runs in workerd).
 */
import { type Schema, Validator } from "@cfworker/json-schema";
import * as v from "valibot";
import { beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../../edge/app.ts";
import type { EdgeEnv } from "../../edge/env.ts";
import { ProblemSchema, RerankResponseSchema } from "../../edge/rerank/response-schema.ts";
import { MAX_CANDIDATES } from "../../edge/rerank/schema.ts";
import modelBytes from "../../fixtures/model/model.onnx";
import { candidates, get, headNames, manifest, postRerank, rerankBody } from "./requests.ts";

interface OpenApiOperation {
  requestBody?: unknown;
  security?: Record<string, string[]>[];
  responses: Record<string, unknown>;
}
interface OpenApiDoc {
  openapi: string;
  servers: { url: string }[];
  paths: Record<string, Record<string, OpenApiOperation>>;
  components: {
    schemas: Record<string, Schema & { required?: string[]; properties?: Record<string, Schema> }>;
    securitySchemes: Record<string, { type: string; scheme?: string; description?: string }>;
  };
}

let doc: OpenApiDoc;
let requestSchema: Validator;
let responseSchema: Validator;
let problemSchema: Validator;
let healthSchema: Validator;

beforeAll(async () => {
  const res = await get("/openapi.json");
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toMatch(/^application\/json/);
  doc = JSON.parse(await res.text()) as OpenApiDoc;
  const { schemas } = doc.components;
  requestSchema = new Validator(schemas.RerankRequest!, "2020-12", false);
  responseSchema = new Validator(schemas.RerankResponse!, "2020-12", false);
  problemSchema = new Validator(schemas.Problem!, "2020-12", false);
  healthSchema = new Validator(schemas.HealthResponse!, "2020-12", false);
});

const valid = (validator: Validator, value: unknown) => validator.validate(value).valid;

describe("GET /openapi.json", () => {
  it("is an OpenAPI 3.1 document naming every route", () => {
    expect(doc.openapi).toBe("3.1.0");
    expect(Object.keys(doc.paths).sort()).toEqual(["/healthz", "/openapi.json", "/v1/models", "/v1/rerank"]);
    const rerank = doc.paths["/v1/rerank"]!.post!;
    expect(rerank.requestBody).toMatchObject({
      content: { "application/json": { schema: { $ref: "#/components/schemas/RerankRequest" } } },
    });
    expect(Object.keys(rerank.responses)).toEqual(expect.arrayContaining(["200", "400", "401", "413"]));
    expect(rerank.responses["400"]).toMatchObject({
      content: { "application/problem+json": { schema: { $ref: "#/components/schemas/Problem" } } },
    });
  });

  it("every field the document requires is one the worker rejects a body without", async () => {
    const required = doc.components.schemas.RerankRequest!.required ?? [];
    expect(required).toContain("candidates");
    const body = rerankBody({ candidates: candidates(3) });
    for (const field of required) {
      const { [field]: _, ...without } = body;
      expect(valid(requestSchema, without)).toBe(false);
      const res = await postRerank(without);
      expect(res.status).toBe(400);
      expect(((await res.json()) as { errors: { field: string }[] }).errors.map((e) => e.field)).toContain(
        field,
      );
    }
  });

  it("the document's schema and the worker agree on valid and invalid bodies", async () => {
    const ok = rerankBody({
      candidates: candidates(4),
      weights: { [headNames[0]!]: 2 },
      topK: 2,
      fusion: "product",
    });
    const cases: { body: unknown; field: string }[] = [
      { body: rerankBody({ candidates: [{ features: {} }] }), field: "candidates.0.id" },
      { body: rerankBody({ candidates: candidates(2), topk: 1 }), field: "topk" },
      { body: rerankBody({ candidates: candidates(2), weights: { "not-a-head": 1 } }), field: "weights" },
      { body: rerankBody({ candidates: candidates(2), weights: { [headNames[0]!]: -1 } }), field: "weights" },
      { body: rerankBody({ candidates: candidates(2), fusion: "max" }), field: "fusion" },
      { body: rerankBody({ candidates: candidates(2), topK: 1.5 }), field: "topK" },
      { body: rerankBody({ candidates: candidates(MAX_CANDIDATES + 1) }), field: "candidates" },
    ];
    expect(valid(requestSchema, ok)).toBe(true);
    expect((await postRerank(ok)).status).toBe(200);
    for (const { body, field } of cases) {
      expect(valid(requestSchema, body), field).toBe(false);
      const res = await postRerank(body);
      expect(res.status, field).toBe(400);
      const fields = ((await res.json()) as { errors: { field: string }[] }).errors.map((e) => e.field);
      expect(
        fields.some((f) => f.startsWith(field)),
        `${field} in ${fields}`,
      ).toBe(true);
    }
  });

  it("weights may only name this model's heads", () => {
    const weights = doc.components.schemas.RerankRequest!.properties!.weights as {
      propertyNames: { enum: string[] };
    };
    expect(weights.propertyNames.enum).toEqual(headNames);
  });

  it("real responses match the documented response schemas", async () => {
    const res = await postRerank(rerankBody({ candidates: [...candidates(5), { id: "c0" }], explain: true }));
    const body = await res.json();
    expect(valid(responseSchema, body)).toBe(true);
    expect(v.is(RerankResponseSchema, body)).toBe(true);
    expect(valid(responseSchema, { ...(body as object), extra: 1 })).toBe(false);

    const bad = await (await postRerank({ candidates: "no" })).json();
    expect(valid(problemSchema, bad)).toBe(true);
    expect(v.is(ProblemSchema, bad)).toBe(true);
  });

  it("serves itself from whichever host it was fetched (relative server URL)", () => {
    expect(doc.servers).toEqual([expect.objectContaining({ url: "/" })]);
  });

  it("declares the bearer scheme on /v1/* and no security on the open routes, as the worker guards them", async () => {
    expect(doc.components.securitySchemes.bearer).toMatchObject({ type: "http", scheme: "bearer" });
    const operations = Object.entries(doc.paths).flatMap(([path, item]) =>
      Object.entries(item).map(([method, op]) => ({ path, method, op })),
    );
    const app = createApp({ manifest, model: modelBytes });
    const env: EdgeEnv = { MTRANK_API_KEYS: "k1" };
    for (const { path, method, op } of operations) {
      const guarded = path.startsWith("/v1/");
      expect(op.security, path).toEqual(guarded ? [{ bearer: [] }] : []);
      const res = await app.fetch(new Request(`http://mtrank.test${path}`, { method }), env);
      expect(res.status === 401, `${method} ${path} -> ${res.status}`).toBe(guarded);
    }
  });

  it("real /healthz bodies match the documented schema, whichever auth mode", async () => {
    const auth = doc.components.schemas.HealthResponse!.properties!.auth as {
      enum: string[];
      description: string;
    };
    expect(auth.enum).toEqual(expect.arrayContaining(["api-key", "open"]));
    expect(auth.description).toMatch(/api-key/);
    const app = createApp({ manifest, model: modelBytes });
    for (const [env, mode] of [
      [{}, "open"],
      [{ MTRANK_API_KEYS: "k1" }, "api-key"],
    ] as const) {
      const body = await (await app.fetch(new Request("http://mtrank.test/healthz"), env)).json();
      expect(body).toMatchObject({ auth: mode });
      expect(valid(healthSchema, body), JSON.stringify(body)).toBe(true);
    }
    expect(valid(healthSchema, { status: "ok", auth: "sometimes" })).toBe(false);
  });

  it("is public even when API keys are configured (it names no secret)", async () => {
    const app = createApp({ manifest, model: modelBytes });
    const env: EdgeEnv = { MTRANK_API_KEYS: "k1" };
    const res = await app.fetch(new Request("http://mtrank.test/openapi.json"), env);
    expect(res.status).toBe(200);
    expect((await app.fetch(new Request("http://mtrank.test/v1/models"), env)).status).toBe(401);
  });

  it("with keys set (usable or not) it leaves out the serving model, which /v1/models gives a key holder", async () => {
    const app = createApp({ manifest, model: modelBytes });
    const text = async (env: EdgeEnv) =>
      (await app.fetch(new Request("http://mtrank.test/openapi.json"), env)).text();
    const open = await text({});
    expect(open).toContain(manifest.id);
    expect(open).toContain(manifest.version);
    for (const keys of ["key-of-at-least-16-chars", "not a usable key"]) {
      const keyed = await text({ MTRANK_API_KEYS: keys });
      expect(keyed).not.toContain(manifest.id);
      expect(keyed).not.toContain(manifest.version);
      const doc = JSON.parse(keyed) as OpenApiDoc & { info: { description: string } };
      expect(doc.info.description).toMatch(/GET \/v1\/models/);
      // The head names, the allowed weight names, are the model's too.
      const weights = doc.components.schemas.RerankRequest!.properties!.weights as {
        propertyNames?: { enum?: string[] };
      };
      expect(weights.propertyNames?.enum).toBeUndefined();
      expect(Object.keys(doc.paths).sort()).toEqual(Object.keys(JSON.parse(open).paths).sort());
    }
  });
});
