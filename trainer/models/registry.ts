/** Architectures by their --arch name. A new architecture is one file plus one line here. */
import { sharedBottom } from "./shared-bottom.ts";
import { single } from "./single.ts";
import type { Architecture } from "./types.ts";

export const ARCHITECTURES: Readonly<Record<string, Architecture>> = {
  single,
  "shared-bottom": sharedBottom,
};

export function architecture(name: string): Architecture {
  const arch = ARCHITECTURES[name];
  if (!arch)
    throw new Error(
      `--arch: unknown architecture "${name}" (known: ${Object.keys(ARCHITECTURES).join(", ")})`,
    );
  return arch;
}
