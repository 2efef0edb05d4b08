/**
 * The network-size flags shared by `train` and `compress --distill-from` (the student):
 * --bottom, --tower, --experts, --expert-sizes, --shared-experts, --task-experts, --levels,
 * --cross, --cross-rank, --cross-layout.
 * Each architecture reads the ones it uses (models/types.ts ArchOptions); unset ones keep the
 * defaults.
 */
import { type Command, InvalidArgumentError, Option } from "commander";
import type { ArchOptions, CrossLayout } from "../models/types.ts";
import { FULL_WIDTH_ROWS } from "../train/layer-widths.ts";
import { nonNegativeInt, positiveInt } from "./run-cli.ts";

function sizes(value: string): number[] {
  const list = value.split(",").map((s) => Number(s.trim()));
  if (list.length === 0 || !list.every((n) => Number.isInteger(n) && n > 0))
    throw new InvalidArgumentError(`expected layer sizes like 64,32, got "${value}"`);
  return list;
}

export interface ArchFlags {
  bottom?: number[];
  tower?: number[];
  experts?: number;
  expertSizes?: number[];
  sharedExperts?: number;
  taskExperts?: number;
  levels?: number;
  cross?: number;
  crossRank?: number;
  crossLayout?: CrossLayout;
}

/** Adds the flags to `command`; `who` prefixes their help ("student: "). */
export function addArchFlags(command: Command, who = ""): Command {
  // A trained network's widths follow its file's size (../train/layer-widths.ts); a student's
  // are the defaults.
  const narrower = who === "" ? `; narrower under ${FULL_WIDTH_ROWS.toLocaleString("en")} training rows` : "";
  return command
    .option(
      "--bottom <sizes>",
      `${who}shared-bottom, esmm, single, cross-attention: bottom layer sizes (default 128,64${narrower})`,
      sizes,
    )
    .option("--tower <sizes>", `${who}tower layer sizes per task (default 32${narrower})`, sizes)
    .option("--experts <n>", `${who}mmoe: number of experts (default 4)`, positiveInt)
    .option(
      "--expert-sizes <sizes>",
      `${who}mmoe, ple: each expert's layer sizes (default 64,32${narrower})`,
      sizes,
    )
    .option("--shared-experts <n>", `${who}ple: shared experts per level (default 2)`, positiveInt)
    .option("--task-experts <n>", `${who}ple: experts per task and level (default 1)`, positiveInt)
    .option("--levels <n>", `${who}ple: extraction (CGC) levels (default 1)`, positiveInt)
    .option(
      "--cross <n>",
      `${who}every architecture: low-rank cross layers (DCN-v2) on the input (default 2; 0: none)`,
      nonNegativeInt,
    )
    .option("--cross-rank <r>", `${who}the rank of each cross layer (default 16)`, positiveInt)
    .addOption(
      new Option(
        "--cross-layout <layout>",
        `${who}stacked: the architecture reads the cross layers' output; parallel: it reads the input, and a small tower per head on the cross output adds its logit, so export --factorised can split the first layers (default stacked)`,
      ).choices(["stacked", "parallel"]),
    );
}

/** The flags given, as architecture options. */
export function archOptions(flags: ArchFlags): Partial<ArchOptions> {
  const out: Partial<ArchOptions> = {};
  for (const key of [
    "bottom",
    "tower",
    "experts",
    "expertSizes",
    "sharedExperts",
    "taskExperts",
    "levels",
    "cross",
    "crossRank",
    "crossLayout",
  ] as const)
    if (flags[key] !== undefined) (out as Record<string, unknown>)[key] = flags[key];
  return out;
}
