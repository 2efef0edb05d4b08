/** bin/node-version.js: the line an old Node.js prints before mtrank loads anything. */
import { describe, expect, it } from "vitest";
import { MINIMUM_NODE, nodeTooOld } from "../../bin/node-version.js";

describe("the Node.js version guard", () => {
  it("passes the releases package.json's engines allow and names the ones it does not", async () => {
    const engines = (await import("../../package.json", { with: { type: "json" } })).default.engines.node;
    expect(engines).toBe(`>=${MINIMUM_NODE}`);
    for (const ok of ["22.12.0", "22.23.3", "23.0.0", "24.1.0"]) expect(nodeTooOld(ok), ok).toBeNull();
    for (const old of ["20.20.2", "22.11.9", "18.0.0"])
      expect(nodeTooOld(old)).toBe(
        `mtrank: needs Node.js 22.12 or newer, this is ${old}; \`npx mtrank\` (or \`npm run ...\`) uses the one \`npm ci\` installs in node_modules`,
      );
  });
});
