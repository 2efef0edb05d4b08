/**
 * /openapi.json under `redocly lint`'s recommended rules, run in-process with
 * @redocly/openapi-core (the library the Redocly CLI is built on): no child process, no temp file.
 * Errors and warnings both fail, so the document stays clean for any tool that reads it. The
 * schemas themselves are checked against the worker's behaviour in test/edge/openapi.test.ts.
 */
import { readFileSync } from "node:fs";
import { type Config, createConfig, lintFromString, type NormalizedProblem } from "@redocly/openapi-core";
import { Hono } from "hono";
import { bearerAuth } from "hono/bearer-auth";
import { beforeAll, describe, expect, it } from "vitest";
import { type ApiModel, BEARER_TOKEN_PATTERN, openApiDocument } from "../../edge/openapi/document.ts";
import type { ModelManifest } from "../../shared/manifest.ts";

const manifest = JSON.parse(
  readFileSync(new URL("../../fixtures/model/manifest.json", import.meta.url), "utf8"),
) as ModelManifest;
const model: ApiModel = {
  id: manifest.id,
  version: manifest.version,
  heads: manifest.heads.map((h) => h.name),
};
/** routes/rerank.ts's limit; not imported because that module pulls in the ORT runtime. */
const MAX_BODY_BYTES = 4 * 1024 * 1024;

let config: Config;
beforeAll(async () => {
  config = await createConfig({ extends: ["recommended"] });
});

/** One readable line per problem, so a failure names the rule and where it fired. */
async function lint(document: object): Promise<string[]> {
  const problems: NormalizedProblem[] = await lintFromString({
    source: JSON.stringify(document),
    absoluteRef: "openapi.json",
    config,
  });
  return problems.map(
    (p) => `${p.severity} ${p.ruleId}: ${p.message} at ${p.location.map((l) => l.pointer).join(", ")}`,
  );
}

describe("redocly lint (recommended)", () => {
  it("finds no error and no warning in the document for the fixture model", async () => {
    expect(await lint(openApiDocument(model, MAX_BODY_BYTES))).toEqual([]);
  });

  it("finds none in the document of a worker whose model did not load", async () => {
    expect(await lint(openApiDocument(undefined, MAX_BODY_BYTES))).toEqual([]);
  });

  it("does report a broken document (the lint is live, not vacuously clean)", async () => {
    const doc = openApiDocument(model, MAX_BODY_BYTES);
    const { security: _, ...healthWithoutSecurity } = doc.paths["/healthz"].get;
    const broken = {
      ...doc,
      info: { title: doc.info.title, version: doc.info.version },
      servers: [],
      paths: { ...doc.paths, "/healthz": { get: healthWithoutSecurity } },
    };
    const rules = (await lint(broken)).map((line) => line.split(":")[0]);
    expect(rules).toEqual(
      expect.arrayContaining(["error no-empty-servers", "error security-defined", "warn info-license"]),
    );
  });
});

describe("the bearer scheme's key syntax", () => {
  const documented = new RegExp(BEARER_TOKEN_PATTERN);

  /** Whether Hono's bearer auth, configured with `key`, lets a request sending that key through. */
  async function honoAccepts(key: string): Promise<boolean> {
    const app = new Hono();
    app.use("*", bearerAuth({ token: key }));
    app.get("/", (c) => c.text("ok"));
    const res = await app.request("/", { headers: { authorization: `Bearer ${key}` } });
    return res.status === 200;
  }

  it("is the syntax the installed Hono accepts", async () => {
    const keys = [
      "k1",
      "AZaz09-._~+/",
      "c2VjcmV0==",
      "a b",
      "a=b",
      "=abc",
      "a:b",
      'a"b',
      "a%b",
      "clé",
      "a\tb",
    ];
    for (const key of keys) expect(documented.test(key), JSON.stringify(key)).toBe(await honoAccepts(key));
    expect(keys.filter((k) => documented.test(k))).toEqual(["k1", "AZaz09-._~+/", "c2VjcmV0=="]);
  });

  it("is stated in the scheme's description", () => {
    const { description } = openApiDocument(model, MAX_BODY_BYTES).components.securitySchemes.bearer;
    expect(description).toContain(BEARER_TOKEN_PATTERN);
    expect(description).toContain("MTRANK_API_KEYS");
  });
});
