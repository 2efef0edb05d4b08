/** scripts/check-paths.ts (npm run lint): a path that leaves the repository fails; paths inside it pass. */
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { checkRepository, findEscapes } from "../../scripts/check-paths.ts";

const ROOT = "/repo";
/** A tree with the repository's own shared/ and one file beside trainer/compress/. */
const EXISTING = new Set([
  "/repo/shared/encoder",
  "/repo/trainer/train/step-budget.ts",
  "/repo/fixtures/real-logs",
]);
const exists = (path: string) => EXISTING.has(path);
const paths = (file: string, text: string) => findEscapes(ROOT, file, text, exists).map((e) => e.path);

describe("check-paths", () => {
  it("passes on this repository", () => {
    expect(checkRepository(fileURLToPath(new URL("../..", import.meta.url)))).toEqual([]);
  });

  it("passes imports of the repository's own shared/ and other paths that stay inside", () => {
    expect(paths("edge/model/feeds.ts", 'import type { X } from "../../shared/encoder/encode.ts";')).toEqual(
      [],
    );
    expect(paths("edge/dev-config.ts", 'import type { M } from "../shared/manifest.ts";')).toEqual([]);
    expect(
      paths("edge/dev-config.ts", 'const ROOT = fileURLToPath(new URL("..", import.meta.url));'),
    ).toEqual([]);
    expect(paths("test/trainer/a.test.ts", 'await import("../../trainer/simulate/simulator.ts");')).toEqual(
      [],
    );
    expect(paths("test/trainer/a.test.ts", 'const DATA = "fixtures/real-logs/criteo_sample.csv";')).toEqual(
      [],
    );
    expect(paths("trainer/compress/run-distill.ts", "/** as `train`: ../train/step-budget.ts */")).toEqual(
      [],
    );
    expect(paths(".ci/run", 'cd "$(dirname "$0")/.."')).toEqual([]);
    expect(paths("a.ts", "const n = [1, 2, 3]; // 1..3, and so on...")).toEqual([]);
  });

  it("fails on data and notes read from a sibling folder", () => {
    expect(paths("test/trainer/a.test.ts", 'const DATA = "../shared/data/ali_ccp_sample.csv";')).toEqual([
      "../shared/data/ali_ccp_sample.csv",
    ]);
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a template literal as the source text under test
    expect(paths("test/trainer/a.test.ts", "loadDataset(`../shared/data/${data}`, spec);")).toHaveLength(1);
    expect(paths("bench/x.ts", " * (see ../shared/notes/ort-web-in-workerd.md)")).toEqual([
      "../shared/notes/ort-web-in-workerd.md",
    ]);
    expect(paths("wrangler.toml", "# (../shared/notes/ort-web-in-workerd.md).")).toHaveLength(1);
    expect(paths(".ci/run", "cp -r ../shared/data fixtures/")).toHaveLength(1);
  });

  it("fails on module and file-relative paths that climb above the root", () => {
    expect(paths("edge/model/x.ts", 'import { a } from "../../../shared/encoder/encode.ts";')).toHaveLength(
      1,
    );
    expect(
      paths("test/x.test.ts", 'const d = new URL("../../../shared/data", import.meta.url);'),
    ).toHaveLength(1);
    expect(paths("test/x.test.ts", 'const d = join(import.meta.dirname, "../../shared");')).toHaveLength(1);
    expect(paths("tsconfig.json", '{ "extends": "../base.json" }')).toHaveLength(1);
  });

  it("fails on join/resolve steps out of the root", () => {
    expect(paths("test/x.test.ts", 'const d = resolve(root, "..", "shared", "data");')).toHaveLength(1);
    expect(paths("test/x.test.ts", 'const d = join(process.cwd(), "..", "shared");')).toHaveLength(1);
    expect(
      paths("test/a/x.test.ts", 'const d = join(import.meta.dirname, "..", "..", "..", "x");'),
    ).toHaveLength(1);
    expect(paths("test/a/x.test.ts", 'const d = join(import.meta.dirname, "..", "..", "fixtures");')).toEqual(
      [],
    );
    expect(paths("test/x.test.ts", 'const d = join(tmp, "..", "x");')).toEqual([]); // a base it cannot know
  });
  it("reads a path at the end of a sentence without its full stop, and lets a marked line stand", () => {
    expect(paths("trainer/compress/x.ts", " * see ../train/step-budget.ts.")).toEqual([]);
    expect(paths("test/pipeline/x.test.ts", 'publish({ files: ["../../etc/passwd"] });')).toEqual([
      "../../etc/passwd",
    ]);
    expect(
      paths(
        "test/pipeline/x.test.ts",
        '// check-paths: ignore (hostile on purpose)\npublish({ files: ["../../etc/passwd"] });',
      ),
    ).toEqual([]);
  });
});
