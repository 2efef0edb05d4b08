/**
 * Picks the fastest TensorFlow.js backend present at run time: tfjs-node-gpu, tfjs-node (native,
 * optional: they cannot install on every host), else the pure-JS cpu backend.
 */
import * as tf from "@tensorflow/tfjs";
import { registerFastSegmentSum } from "./segment-sum-kernel.ts";

const NATIVE_PACKAGES = ["@tensorflow/tfjs-node-gpu", "@tensorflow/tfjs-node"];

export async function selectBackend(preferred?: string): Promise<string> {
  if (!preferred || preferred === "auto") {
    for (const pkg of NATIVE_PACKAGES) {
      try {
        await import(/* @vite-ignore */ pkg);
        if (await tf.setBackend("tensorflow")) return finish("tensorflow");
      } catch {
        // Not installed on this host: fall through to the next candidate.
      }
    }
    preferred = "cpu";
  }
  if (!(await tf.setBackend(preferred)))
    throw new Error(`--backend: backend "${preferred}" is not available`);
  return finish(preferred);
}

async function finish(name: string): Promise<string> {
  await tf.ready();
  // The cpu backend prints a multi-line "install tfjs-node" banner on first use; the choice is
  // logged by the caller instead, so mark the banner as shown.
  const backend = tf.backend() as { firstUse?: boolean };
  if ("firstUse" in backend) backend.firstUse = false;
  registerFastSegmentSum(name);
  return name;
}
