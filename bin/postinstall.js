/**
 * npm's postinstall for this package.
 *
 * In a checkout of the repository: `npm run build:ort-snapshot`, which writes
 * edge/runtime/generated/ort-snapshot.bin (onnxruntime-web's memory after its initialisation,
 * bundled by the worker so that it starts faster).
 *
 * In an installed copy (this package inside a node_modules folder): nothing. The tarball already
 * holds the snapshot (`prepack` builds it), made from the onnxruntime-web version this package
 * pins exactly, and only a worker bundling mtrank/worker reads it; the worker checks it against
 * the binary it runs and initialises onnxruntime itself when they differ. The build could not run
 * there anyway: it reads node_modules/ and fixtures/ from the package root, and npm installs the
 * dependencies beside the package, not inside it.
 */
import { spawnSync } from "node:child_process";
import { sep } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
if (!root.split(sep).includes("node_modules")) {
  // npm_execpath: the package manager running this script (npm's own CLI file under npm).
  const manager = process.env.npm_execpath;
  const args = ["run", "build:ort-snapshot"];
  const result =
    manager && /\.[cm]?js$/.test(manager)
      ? spawnSync(process.execPath, [manager, ...args], { stdio: "inherit" })
      : spawnSync("npm", args, { stdio: "inherit", shell: process.platform === "win32" });
  process.exitCode = result.status ?? 1;
}
