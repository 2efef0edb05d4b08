/**
 * npm run test:gpu: training on the WebGPU backend (test/gpu/), apart from `npm test`, which
 * stays the same on every host. It needs a WebGPU adapter; a software one (Mesa's lavapipe, as CI
 * installs it) is enough to prove correctness. Without one the run fails in one line
 * (./test/gpu/adapter-setup.ts): it never passes or skips on a host that cannot run it.
 */
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    name: "gpu",
    environment: "node",
    include: ["test/gpu/**/*.test.ts"],
    globalSetup: ["test/gpu/adapter-setup.ts"],
    // Training on lavapipe compiles every shader on first use and computes on the CPU.
    testTimeout: 300_000,
    hookTimeout: 300_000,
  },
});
