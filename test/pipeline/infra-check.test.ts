/**
 * The infra check reads a candidate as the worker reads an R2 model: a model the serving worker
 * would refuse to download (a manifest over its cap, a graph whose bytes are not the manifest's)
 * fails the check, so the pipeline never publishes it. Runs the real child process on the
 * fixture model.
 */
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { infraCheck } from "../../trainer/pipeline/infra-check.ts";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "mtrank-infra-test-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function fixtureCopy(name: string): Promise<string> {
  const to = join(dir, name);
  await cp("fixtures/model", to, { recursive: true });
  return to;
}

describe("infra check", () => {
  it("passes the fixture model with the worker's default caps", async () => {
    const result = await infraCheck(await fixtureCopy("ok"));
    expect(result.passed).toBe(true);
    expect(result.detail).toMatch(/^model\.onnx: 20 items, top .* score /);
  }, 120_000);

  it("fails a manifest over the serving worker's cap, naming the cap and the setting", async () => {
    const model = await fixtureCopy("big-manifest");
    const bytes = (await readFile(join(model, "manifest.json"))).byteLength;
    const result = await infraCheck(model, { caps: { maxManifestBytes: bytes - 1 } });
    expect(result.passed).toBe(false);
    expect(result.detail).toBe(
      `model.onnx: ModelVerificationError: candidate/manifest.json: ${bytes} bytes, over the ${bytes - 1}-byte cap` +
        " (the worker's MTRANK_MANIFEST_MAX_BYTES / MTRANK_MODEL_MAX_BYTES; gate.infra names a deployment's own)",
    );
    expect((await infraCheck(model, { caps: { maxManifestBytes: bytes } })).passed).toBe(true);
  }, 120_000);

  it("fails a graph over the model cap, and one whose bytes are not the manifest's", async () => {
    const model = await fixtureCopy("tampered");
    const graph = await readFile(join(model, "model.onnx"));
    const capped = await infraCheck(model, { caps: { maxModelBytes: graph.byteLength - 1 } });
    expect(capped.detail).toMatch(/manifest files\["model\.onnx"\]\.bytes says \d+, over the \d+-byte cap/);
    // One byte changed in the graph's last initializer: a graph onnxruntime would still load, but
    // not the one the manifest's sha256 names, which the worker refuses and so does the check.
    graph[graph.byteLength - 1] = graph[graph.byteLength - 1]! ^ 1;
    await writeFile(join(model, "model.onnx"), graph);
    const tampered = await infraCheck(model);
    expect(tampered.passed).toBe(false);
    expect(tampered.detail).toMatch(
      /candidate\/model\.onnx: sha256 [0-9a-f]{64}, manifest files\["model\.onnx"\]\.sha256 says/,
    );
  }, 120_000);
});
