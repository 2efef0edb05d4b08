/**
 * Feature names the model does not read (a typo, another model's feature, a feature in the wrong
 * place, `__proto__`): the request still ranks, as if they were absent, and the answer lists them
 * in `ignored`, bounded; the request's log line counts them (`unknownFeatures`) and never names
 * them; nothing else reads or keeps them.
 */
import fc from "fast-check";
import * as v from "valibot";
import { afterEach, beforeAll, beforeEach, describe, expect, it, type MockInstance, vi } from "vitest";
import {
  ignoredFeatures,
  type KnownFeatures,
  knownFeatures,
  MAX_LISTED,
  MAX_NAME_LENGTH,
} from "../../edge/rerank/ignored-features.ts";
import { RerankResponseSchema } from "../../edge/rerank/response-schema.ts";
import {
  candidates,
  context,
  get,
  manifest,
  postRerank,
  type RerankBody,
  rerankBody,
  user,
} from "./requests.ts";

beforeAll(async () => {
  await get("/healthz"); // loads the worker (and ORT's wasm) once, under the hook timeout
});

let logged: MockInstance<typeof console.log>;
beforeEach(() => {
  logged = vi.spyOn(console, "log").mockImplementation(() => undefined);
});
afterEach(() => {
  logged.mockRestore();
});

const known = knownFeatures(manifest.features.features);
const [userName] = [...known.user];
const [contextName] = [...known.context];
const [itemName] = [...known.item];

interface Answer extends RerankBody {
  ignored?: { features: string[]; more: boolean };
  removed: { duplicates: number; filtered: number };
}

async function rerank(body: unknown): Promise<Answer> {
  const res = await postRerank(body);
  expect(res.status).toBe(200);
  const json = (await res.json()) as Answer;
  expect(v.is(RerankResponseSchema, json), JSON.stringify(json).slice(0, 300)).toBe(true);
  expect(json.fallback).toBe(false);
  return json;
}

/** The request log lines written so far in this test. */
function requestLines(): { unknownFeatures?: number }[] {
  return logged.mock.calls
    .map((c) => String(c[0]))
    .filter((l) => l.includes('"event":"request"'))
    .map((l) => JSON.parse(l) as { unknownFeatures?: number });
}

/** The same body with extra keys in every features object: `extra(place)` gives them. */
function withExtra(extra: (place: "user" | "context" | "item", i: number) => Record<string, unknown>, n = 5) {
  return {
    user: { ...user, features: { ...user.features, ...extra("user", 0) } },
    context: { features: { ...context.features, ...extra("context", 0) } },
    candidates: candidates(n).map((c, i) => ({ ...c, features: { ...c.features, ...extra("item", i) } })),
  };
}

describe("knownFeatures", () => {
  it("reads each feature from the place the encoder reads it", () => {
    expect(known.user.has(userName!)).toBe(true);
    expect(known.context.has(contextName!)).toBe(true);
    expect(known.item.has(itemName!)).toBe(true);
    expect(known.user.size + known.context.size + known.item.size).toBe(manifest.features.features.length);
  });
});

describe("ignoredFeatures", () => {
  const k: KnownFeatures = {
    user: new Set(["country"]),
    context: new Set(["device"]),
    item: new Set(["price"]),
  };

  it("nothing to report when every name is read where it was sent", () => {
    const body = {
      user: { features: { country: "fr" } },
      context: { features: { device: "mobile" } },
      candidates: [{ id: "a", features: { price: 1 } }, { id: "b" }],
    };
    expect(ignoredFeatures(body, k)).toBeUndefined();
  });

  it("lists typos and names sent in the wrong place, each once, in the order met", () => {
    const body = {
      user: { features: { contry: "fr", device: "mobile" } },
      context: { features: { device: "mobile" } },
      candidates: [
        { id: "a", features: { price: 1, colour: "red" } },
        { id: "b", features: { colour: "blue", country: "fr", in_stock: true } },
      ],
    };
    expect(ignoredFeatures(body, k)).toEqual({
      features: [
        "user.features.contry",
        "user.features.device",
        "candidates.*.features.colour",
        "candidates.*.features.country",
        "candidates.*.features.in_stock",
      ],
      more: false,
    });
    // A candidate feature a filter names is read, by the filter.
    expect(ignoredFeatures(body, k, ["in_stock", "colour"])?.features).toEqual([
      "user.features.contry",
      "user.features.device",
      "candidates.*.features.country",
    ]);
  });

  it("bounded: at most 10 names, each cut to 64 characters without splitting a character", () => {
    const long = `${"x".repeat(MAX_NAME_LENGTH - 1)}😀tail`;
    const body = {
      user: { features: { [long]: 1, ["y".repeat(100_000)]: 1 } },
      candidates: Array.from({ length: 1000 }, (_, i) => ({
        id: `c${i}`,
        features: Object.fromEntries(Array.from({ length: 20 }, (_, j) => [`f${i}-${j}`, j])),
      })),
    };
    const got = ignoredFeatures(body, k)!;
    expect(got.features).toHaveLength(MAX_LISTED);
    expect(got.more).toBe(true);
    expect(got.features[0]).toBe(`user.features.${"x".repeat(MAX_NAME_LENGTH - 1)}…`);
    expect(got.features[1]).toBe(`user.features.${"y".repeat(MAX_NAME_LENGTH)}…`);
    expect(got.features.slice(2)).toEqual(
      Array.from({ length: 8 }, (_, j) => `candidates.*.features.f0-${j}`),
    );
    // Exactly ten: listed in full, nothing more.
    const ten = {
      candidates: [
        { id: "a", features: Object.fromEntries(Array.from({ length: 10 }, (_, j) => [`g${j}`, 1])) },
      ],
    };
    expect(ignoredFeatures(ten, k)).toMatchObject({ more: false });
    expect(ignoredFeatures(ten, k)?.features).toHaveLength(10);
  });

  it("__proto__, constructor and prototype keys, as JSON.parse makes them, are listed and pollute nothing", () => {
    const body = JSON.parse(
      '{"user":{"features":{"__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":1}}}},' +
        '"candidates":[{"id":"a","features":{"__proto__":{"polluted":1},"prototype":1,"toString":"x"}}]}',
    );
    expect(ignoredFeatures(body, k)?.features).toEqual([
      "user.features.__proto__",
      "user.features.constructor",
      "candidates.*.features.__proto__",
      "candidates.*.features.prototype",
      "candidates.*.features.toString",
    ]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty("polluted");
  });

  it("skips shapes it does not expect rather than throwing", () => {
    for (const body of [
      null,
      1,
      "x",
      [],
      { user: 1, context: [], candidates: {} },
      { candidates: [null, 1, { features: [] }] },
    ])
      expect(ignoredFeatures(body, k)).toBeUndefined();
  });

  it("property: bounded, complete up to the bound, and never lists a name the model reads there", () => {
    const name = fc.oneof(
      fc.constantFrom("country", "device", "price", "__proto__", "constructor", "prototype", "toString"),
      fc.string({ maxLength: 80 }),
    );
    const features = fc.dictionary(name, fc.constant(1), { maxKeys: 8 });
    fc.assert(
      fc.property(
        features,
        features,
        fc.array(features, { maxLength: 6 }),
        fc.array(name, { maxLength: 3 }),
        (u, c, items, filters) => {
          const body = JSON.parse(
            JSON.stringify({
              user: { features: u },
              context: { features: c },
              candidates: items.map((f, i) => ({ id: `c${i}`, features: f })),
            }),
          );
          // What the report should hold, unbounded, in the order met.
          const unknown = (features: object, names: ReadonlySet<string>) =>
            Object.keys(features).filter((n) => !names.has(n));
          const itemNames = new Set(
            (body.candidates as { features: object }[]).flatMap((x) => unknown(x.features, k.item)),
          );
          const expected = [
            ...unknown(body.user.features, k.user).map((n) => `user.features.${n}`),
            ...unknown(body.context.features, k.context).map((n) => `context.features.${n}`),
            ...[...itemNames].filter((n) => !filters.includes(n)).map((n) => `candidates.*.features.${n}`),
          ];
          const got = ignoredFeatures(body, k, filters);
          if (expected.length === 0) {
            expect(got).toBeUndefined();
            return;
          }
          const cut = (p: string) => {
            const at = p.indexOf(".features.") + ".features.".length;
            const n = p.slice(at);
            if (n.length <= MAX_NAME_LENGTH) return p;
            const end = /[\uD800-\uDBFF]/.test(n[MAX_NAME_LENGTH - 1]!)
              ? MAX_NAME_LENGTH - 1
              : MAX_NAME_LENGTH;
            return `${p.slice(0, at)}${n.slice(0, end)}…`;
          };
          expect(got).toEqual({
            features: expected.slice(0, MAX_LISTED).map(cut),
            more: expected.length > MAX_LISTED,
          });
        },
      ),
      { seed: 7, numRuns: 300 },
    );
  });
});

describe("POST /v1/rerank with names the model does not read", () => {
  it("ranks as if they were absent and lists them in `ignored`", async () => {
    const plain = await rerank(rerankBody({ candidates: candidates(5) }));
    expect(plain).not.toHaveProperty("ignored");
    const typo = `${itemName}_typo`;
    const extra = await rerank(
      withExtra((place) =>
        place === "user"
          ? { contry: "fr", [contextName!]: "moved" } // a context feature sent as a user feature
          : place === "context"
            ? { "sent by another model": 1.5 }
            : { [typo]: "x", [userName!]: "u" },
      ),
    );
    expect(extra.items).toEqual(plain.items);
    const counts = requestLines().map((l) => l.unknownFeatures);
    expect(counts).toEqual([undefined, 5]);
    expect(extra.ignored).toEqual({
      features: [
        "user.features.contry",
        `user.features.${contextName}`,
        "context.features.sent by another model",
        `candidates.*.features.${typo}`,
        `candidates.*.features.${userName}`,
      ],
      more: false,
    });
  });

  it("a filter's field is read, not ignored", async () => {
    const body = withExtra((place, i) => (place === "item" ? { in_stock: i % 2 === 0 } : {}));
    const answer = await rerank({ ...body, filters: [{ field: "in_stock", op: "eq", value: true }] });
    expect(answer.removed.filtered).toBe(2);
    expect(answer).not.toHaveProperty("ignored");
  });

  it("__proto__, constructor, prototype and toString keys: same ranking, listed, nothing polluted", async () => {
    const plain = await rerank(rerankBody({ candidates: candidates(5) }));
    // Written as JSON text: an object literal's __proto__ would set its prototype, not a key.
    const keys =
      '"__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":1}},"prototype":1,"toString":"x"';
    const body = JSON.stringify(rerankBody({ candidates: candidates(5) })).replaceAll(
      '"features":{',
      `"features":{${keys},`,
    );
    expect(body.match(/"__proto__"/g)).toHaveLength(7); // user, context and 5 candidates
    const answer = await rerank(body);
    expect(answer.items).toEqual(plain.items);
    const names = ["__proto__", "constructor", "prototype", "toString"];
    expect(answer.ignored).toEqual({
      features: [
        ...names.map((n) => `user.features.${n}`),
        ...names.map((n) => `context.features.${n}`),
        `candidates.*.features.${names[0]}`,
        `candidates.*.features.${names[1]}`,
      ],
      more: true,
    });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty("polluted");
  });

  it("thousands of unknown names: the answer lists ten, and the log none", async () => {
    // 100,000 names in about 1.4 MB.
    const secret = "zq-";
    const body = withExtra(
      (place, i) =>
        place === "item"
          ? Object.fromEntries(Array.from({ length: 100 }, (_, j) => [`${secret}${i}-${j}`, j]))
          : {},
      1000,
    );
    const answer = await rerank(body);
    expect(answer.items).toHaveLength(1000);
    expect(answer.ignored?.features).toHaveLength(MAX_LISTED);
    expect(answer.ignored?.more).toBe(true);
    const lines = logged.mock.calls.map((c) => String(c[0]));
    expect(lines.some((l) => l.includes('"event":"request"'))).toBe(true);
    expect(lines.filter((l) => l.includes(secret))).toEqual([]);
    expect(requestLines().map((l) => l.unknownFeatures)).toEqual([MAX_LISTED]);
  });
});
