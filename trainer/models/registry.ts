/** Architectures by their --arch name. A new architecture is one file plus one line here. */
import { crossAttention } from "./cross-attention.ts";
import { esmm } from "./esmm.ts";
import { mmoe } from "./mmoe.ts";
import { ple } from "./ple.ts";
import { sharedBottom } from "./shared-bottom.ts";
import { single } from "./single.ts";
import type { Architecture } from "./types.ts";

export const ARCHITECTURES: Readonly<Record<string, Architecture>> = {
  single,
  "shared-bottom": sharedBottom,
  mmoe,
  ple,
  esmm,
  "cross-attention": crossAttention,
};

export function architecture(name: string): Architecture {
  const arch = ARCHITECTURES[name];
  if (!arch)
    throw new Error(
      `--arch: unknown architecture "${name}" (known: ${Object.keys(ARCHITECTURES).join(", ")})`,
    );
  return arch;
}
