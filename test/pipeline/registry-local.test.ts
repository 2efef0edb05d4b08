/**
 * The local registry writes the state wrangler reads: the fixture model published into a
 * --persist-to folder and models/current set are
 *   - read back byte for byte by wrangler's own CLI (`r2 object get --local --persist-to --pipe`,
 *     `kv key get --namespace-id --local --persist-to`), and
 *   - served by `wrangler dev --persist-to` to a worker whose config binds MTRANK_MODELS /
 *     MTRANK_MODEL_POINTERS to the default bucket and namespace id, which loads the model
 *     through the worker's own edge/model/remote.ts (fetch + sha256 verification); a second
 *     model published and flipped while that wrangler dev runs is served next.
 * Slow for a unit test (each wrangler start is seconds): about 15-25 s in all.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../scripts/local-cloudflare.ts";
import type { PublishedModel } from "../../trainer/pipeline/contracts.ts";
import {
  DEFAULT_BUCKET,
  DEFAULT_NAMESPACE_ID,
  LocalRegistry,
} from "../../trainer/pipeline/registry/local.ts";
import { flipPointer, publishModel } from "../../trainer/pipeline/registry/publish.ts";

const run = promisify(execFile);
const WRANGLER = resolve("node_modules/wrangler/bin/wrangler.js");
/** No metrics prompt, no colours, no interactive session: wrangler as a script sees it. */
const WRANGLER_ENV = {
  ...process.env,
  WRANGLER_SEND_METRICS: "false",
  CI: "1",
  NO_COLOR: "1",
  FORCE_COLOR: "0",
};

let tmp: string;
let persistTo: string;
let published: PublishedModel;
/** What the registry that created the state logged. */
const firstLog: string[] = [];

/** `wrangler <args>` in `cwd`, run by this Node (wrangler needs Node 22; vitest runs on it). */
async function wrangler(args: string[], cwd: string): Promise<Buffer> {
  const { stdout } = await run(process.execPath, [WRANGLER, ...args], {
    cwd,
    env: WRANGLER_ENV,
    encoding: "buffer",
    maxBuffer: 64 * 1024 * 1024,
  });
  return stdout;
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), "mtrank-local-registry-"));
  persistTo = join(tmp, "state");
  const registry = new LocalRegistry({ persistTo, log: (line) => firstLog.push(line) });
  try {
    published = await publishModel(registry, "fixtures/model");
    await flipPointer(registry, "models/current", published);
  } finally {
    await registry.close();
  }
}, 60_000);

afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe("the local registry's state, as wrangler reads it", () => {
  it("uses the miniflare wrangler uses: package.json pins the version wrangler depends on", async () => {
    const ours = JSON.parse(await readFile("package.json", "utf8")) as {
      devDependencies: Record<string, string>;
      peerDependencies: Record<string, string>;
    };
    const theirs = JSON.parse(await readFile("node_modules/wrangler/package.json", "utf8")) as {
      version: string;
      dependencies: Record<string, string>;
    };
    expect(ours.devDependencies.miniflare).toBe(theirs.dependencies.miniflare);
    // An installed mtrank gets miniflare from the user's wrangler (local mode needs it anyway).
    expect(ours.peerDependencies.wrangler).toBe(`^${theirs.version}`);
  });

  it("says when persistTo holds no state yet (a misspelt path), and not once it does", async () => {
    expect(firstLog.filter((l) => l.includes("holds no wrangler state yet"))).toHaveLength(1);
    const again: string[] = [];
    const registry = new LocalRegistry({ persistTo, log: (line) => again.push(line) });
    try {
      expect(await registry.getPointer("models/current")).toBe(published.prefix);
    } finally {
      await registry.close();
    }
    expect(again.filter((l) => l.includes("holds no wrangler state yet"))).toEqual([]);
  }, 60_000);

  it("lays R2 and KV out under <persist-to>/v3/r2/<bucket> and v3/kv/<namespace id>", async () => {
    expect(await readdir(join(persistTo, "v3", "r2"))).toContain(DEFAULT_BUCKET);
    expect(await readdir(join(persistTo, "v3", "kv"))).toContain(DEFAULT_NAMESPACE_ID);
  });

  it("wrangler r2 object get --local returns the published bytes; kv key get returns the prefix", async () => {
    for (const file of ["manifest.json", "model.onnx"]) {
      const bytes = await wrangler(
        [
          "r2",
          "object",
          "get",
          `${DEFAULT_BUCKET}/${published.prefix}${file}`,
          "--local",
          "--persist-to",
          persistTo,
          "--pipe",
        ],
        tmp,
      );
      expect(bytes.equals(await readFile(join("fixtures/model", file))), file).toBe(true);
    }
    const pointer = await wrangler(
      [
        "kv",
        "key",
        "get",
        "models/current",
        "--namespace-id",
        DEFAULT_NAMESPACE_ID,
        "--text",
        "--local",
        "--persist-to",
        persistTo,
      ],
      tmp,
    );
    expect(pointer.toString("utf8").trim()).toBe(published.prefix);
  }, 60_000);

  describe("wrangler dev --persist-to, with the worker's bindings", () => {
    let dev: ChildProcess | undefined;
    let origin: string;
    let output = "";

    beforeAll(async () => {
      const workerDir = join(tmp, "worker");
      await mkdir(workerDir, { recursive: true });
      // The worker's own loader, so what it accepts is what the real worker would.
      await writeFile(
        join(workerDir, "worker.ts"),
        [
          `import { fetchRemoteModel } from ${JSON.stringify(resolve("edge/model/remote.ts"))};`,
          "export default {",
          "  async fetch(_request: Request, env: { MTRANK_MODELS: never; MTRANK_MODEL_POINTERS: { get(k: string): Promise<string | null> } }) {",
          '    const prefix = await env.MTRANK_MODEL_POINTERS.get("models/current");',
          '    if (!prefix) return new Response("no pointer", { status: 404 });',
          "    try {",
          "      const source = await fetchRemoteModel(env.MTRANK_MODELS, prefix);",
          "      const manifest = source.manifest as { id: string; version: string };",
          "      return Response.json({ prefix, id: manifest.id, version: manifest.version, modelBytes: source.model.byteLength });",
          "    } catch (error) {",
          "      return new Response(String(error), { status: 500 });",
          "    }",
          "  },",
          "};",
          "",
        ].join("\n"),
      );
      await writeFile(
        join(workerDir, "wrangler.toml"),
        [
          'name = "mtrank-registry-check"',
          'main = "worker.ts"',
          'compatibility_date = "2026-08-01"',
          "[[r2_buckets]]",
          'binding = "MTRANK_MODELS"',
          `bucket_name = "${DEFAULT_BUCKET}"`,
          "[[kv_namespaces]]",
          'binding = "MTRANK_MODEL_POINTERS"',
          `id = "${DEFAULT_NAMESPACE_ID}"`,
          "",
        ].join("\n"),
      );
      const port = await freePort();
      origin = `http://127.0.0.1:${port}`;
      dev = spawn(
        process.execPath,
        [
          WRANGLER,
          "dev",
          "--config",
          join(workerDir, "wrangler.toml"),
          "--persist-to",
          persistTo,
          "--ip",
          "127.0.0.1",
          "--port",
          String(port),
          "--inspector-port",
          String(await freePort()),
          "--show-interactive-dev-session=false",
        ],
        { cwd: workerDir, env: WRANGLER_ENV, stdio: ["ignore", "pipe", "pipe"] },
      );
      dev.stdout?.on("data", (chunk: Buffer) => {
        output += chunk.toString();
      });
      dev.stderr?.on("data", (chunk: Buffer) => {
        output += chunk.toString();
      });
      await waitFor(async () => {
        if (dev?.exitCode !== null) throw new Error(`wrangler dev exited:\n${output}`);
        return /Ready on/.test(output);
      }, 90_000);
    }, 120_000);

    afterAll(async () => {
      if (dev && dev.exitCode === null) {
        const exited = new Promise((done) => dev?.once("exit", done));
        dev.kill("SIGTERM");
        await Promise.race([exited, new Promise((done) => setTimeout(done, 5000))]);
        if (dev.exitCode === null) dev.kill("SIGKILL");
      }
    });

    it("serves the published model through the worker's verifying loader", async () => {
      const response = await fetch(origin);
      const body = await response.text();
      expect(response.status, body).toBe(200);
      expect(JSON.parse(body)).toEqual({
        prefix: published.prefix,
        id: published.id,
        version: published.version,
        modelBytes: published.files["model.onnx"]!.bytes,
      });
    }, 30_000);

    it("serves a model published and flipped while it runs", async () => {
      const dir = join(tmp, "model-b");
      await cp("fixtures/model", dir, { recursive: true });
      const manifest = JSON.parse(await readFile(join(dir, "manifest.json"), "utf8")) as { version: string };
      manifest.version = "registry-local-test";
      await writeFile(join(dir, "manifest.json"), JSON.stringify(manifest, null, 1));
      // A second workerd on the state wrangler dev is serving from.
      const registry = new LocalRegistry({ persistTo });
      let b: PublishedModel;
      try {
        b = await publishModel(registry, dir);
        expect(await flipPointer(registry, "models/current", b)).toBe(published.prefix);
      } finally {
        await registry.close();
      }
      const body = (await (await fetch(origin)).json()) as { prefix: string; version: string };
      expect(body).toMatchObject({ prefix: b.prefix, version: "registry-local-test" });
    }, 60_000);
  });
});

async function waitFor(ready: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ready())) {
    if (Date.now() > deadline) throw new Error(`not ready after ${timeoutMs} ms`);
    await new Promise((done) => setTimeout(done, 200));
  }
}
