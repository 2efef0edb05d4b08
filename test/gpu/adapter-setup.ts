/**
 * test:gpu's global setup: the run needs a WebGPU adapter. Without one it stops here with one
 * line saying what to install, and exits non-zero, before any test could pass or be skipped.
 */
import { adapterLine, findAdapter } from "../../trainer/train/webgpu-backend.ts";

export default async function setup(): Promise<void> {
  const adapter = await findAdapter();
  if (typeof adapter === "string") {
    process.stderr.write(`test:gpu: FAILED: ${adapter}\n`);
    process.exit(1);
  }
  process.stderr.write(`test:gpu: WebGPU adapter ${adapterLine(adapter)}\n`);
}
