/**
 * `node --import mtrank/register your-script.mjs`: lets Node import mtrank's TypeScript sources
 * (mtrank/trainer, mtrank/encoder, ...) by registering tsx's loader, which mtrank depends on.
 * `npx tsx your-script.ts` does the same. bin/mtrank.js starts with it.
 */
import { register } from "tsx/esm/api";

register();
