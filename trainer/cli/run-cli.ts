/** Shared CLI plumbing: one readable line and exit 1 on any error, option parsers. */
import { InvalidArgumentError } from "commander";

export async function runCli(main: () => Promise<void>): Promise<void> {
  try {
    await main();
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`error: ${message.split("\n")[0]}\n`);
    process.exitCode = 1;
  }
}

export function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new InvalidArgumentError(`expected a positive integer, got "${value}"`);
  return n;
}

export function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0)
    throw new InvalidArgumentError(`expected an integer >= 0, got "${value}"`);
  return n;
}

export function fraction(value: string): number {
  const n = Number(value);
  if (!(n > 0 && n < 1)) throw new InvalidArgumentError(`expected a number between 0 and 1, got "${value}"`);
  return n;
}

export function positiveNumber(value: string): number {
  const n = Number(value);
  if (!(n > 0) || !Number.isFinite(n))
    throw new InvalidArgumentError(`expected a positive number, got "${value}"`);
  return n;
}

export function nonNegativeNumber(value: string): number {
  const n = Number(value);
  if (!(n >= 0) || !Number.isFinite(n) || value.trim() === "")
    throw new InvalidArgumentError(`expected a number >= 0, got "${value}"`);
  return n;
}

export function finiteNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || value.trim() === "")
    throw new InvalidArgumentError(`expected a number, got "${value}"`);
  return n;
}

/** Parses "click=1,purchase=2" into { click: 1, purchase: 2 }. */
/** name=share pairs, each share above 0 and at most `max` (--id-dropout movie=0.1,user=0.05). */
export function shareList(max: number): (value: string) => Record<string, number> {
  return (value) => {
    const out: Record<string, number> = {};
    for (const part of value.split(",")) {
      const [name, raw] = part.split("=");
      const share = Number(raw);
      if (!name?.trim() || raw === undefined || !(share > 0 && share <= max))
        throw new InvalidArgumentError(
          `expected name=share pairs, each share above 0 and at most ${max}, like item=0.1, got "${part}"`,
        );
      out[name.trim()] = share;
    }
    return out;
  };
}

export function weightList(value: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const part of value.split(",")) {
    const [name, raw] = part.split("=");
    const w = Number(raw);
    if (!name || raw === undefined || !Number.isFinite(w) || w < 0) {
      throw new InvalidArgumentError(`expected name=weight pairs like click=1,purchase=2, got "${part}"`);
    }
    out[name.trim()] = w;
  }
  return out;
}
