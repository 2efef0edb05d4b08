/**
 * The Node.js release mtrank needs (package.json "engines"): the trainer's worker threads load its
 * TypeScript through tsx's loader, which older releases fail to start in a thread (on 20, a stack
 * trace or a three-minute hang). Checked before anything loads, so an old Node says so in a line.
 */
export const MINIMUM_NODE = "22.12";

/** The line to print when `version` (process.versions.node) is older than MINIMUM_NODE, else null. */
export function nodeTooOld(version) {
  const [major = 0, minor = 0] = version.split(".").map(Number);
  const [needMajor, needMinor] = MINIMUM_NODE.split(".").map(Number);
  if (major > needMajor || (major === needMajor && minor >= needMinor)) return null;
  return (
    `mtrank: needs Node.js ${MINIMUM_NODE} or newer, this is ${version}; ` +
    "`npx mtrank` (or `npm run ...`) uses the one `npm ci` installs in node_modules"
  );
}
