/**
 * npm run pipeline -- <verb> (also `mtrank pipeline <verb>`): the nightly retrain-and-publish
 * pipeline (docs/pipeline.md).
 *
 *   run --config pipeline.json [--dry-run] [--force-publish --reason "..."]
 *   status [--limit N] | history [--limit N] | rollback [--to PREFIX] [--pointer current|challenger]
 *   promote | gc --keep N | unlock [--force]
 *
 * `run` exits 0 when it published (or a dry run would have), 2 when the gate or drift refused
 * the candidate, 3 when data.complete found the day not complete yet (nothing read: a scheduler
 * may try again later), 1 on an error or a rollback after a failed smoke test.
 */
import { Command, InvalidArgumentError, Option } from "commander";
import { loadConfig, type PipelineConfig } from "../pipeline/config.ts";
import type { PointerName } from "../pipeline/contracts.ts";
import {
  collectGarbage,
  formatStatus,
  pipelineStatus,
  promote,
  rollback,
  runHistory,
  unlock,
} from "../pipeline/ops.ts";
import { recordLine } from "../pipeline/record.ts";
import { type OwnedRegistry, openRegistry, runPipeline } from "../pipeline/run.ts";
import { nonNegativeInt, positiveInt, runCli } from "./run-cli.ts";

const CONFIG_HELP = "the pipeline config";

/** Opens the config's registry for `use`, closed afterwards whatever happens. */
async function withRegistry<T>(
  configPath: string,
  use: (registry: OwnedRegistry, config: PipelineConfig) => Promise<T>,
): Promise<T> {
  const config = await loadConfig(configPath);
  const registry = await openRegistry(config.registry, process.env, (line) => console.error(line));
  try {
    return await use(registry, config);
  } finally {
    await registry.close();
  }
}

function pointerOption(value: string): PointerName {
  if (value === "current" || value === "challenger") return `models/${value}`;
  throw new InvalidArgumentError(`expected current or challenger, got "${value}"`);
}

const program = new Command("pipeline").description(
  "Nightly retrain and publish: data checks, drift, training, evaluation, gate, publish, smoke test.",
);

program
  .command("run")
  .description("one pipeline run: train a candidate, gate it against the champion, publish it if it passes")
  .option("--config <file>", CONFIG_HELP, "pipeline.json")
  .option("--dry-run", "everything up to the gate's decision; the registry is only read")
  .option("--force-publish", "publish although the gate refused or drift said stop (needs --reason)")
  .option("--reason <text>", "why --force-publish: kept in the run record")
  .action(async (opts: { config: string; dryRun?: boolean; forcePublish?: boolean; reason?: string }) => {
    if (opts.forcePublish && !opts.reason?.trim())
      throw new Error('--force-publish: say why with --reason "..." (it is kept in the run record)');
    if (opts.reason && !opts.forcePublish) throw new Error("--reason: only with --force-publish");
    const config = await loadConfig(opts.config);
    const stop = new AbortController();
    // A first SIGINT or SIGTERM (Ctrl-C, a cancelled CI job) stops the run where it is safe to
    // (after the flip: it ends the smoke test and puts the pointer back): its record is written
    // and the lock released. Another one a second or more later ends the
    // process at once; one sooner is the same signal delivered twice (to the process and to its
    // group, as `timeout` and tsx's wrapper both do), not a second request.
    let first = 0;
    const interrupt = (name: NodeJS.Signals) => {
      if (stop.signal.aborted) {
        if (Date.now() - first >= 1000) process.exit(130);
        return;
      }
      first = Date.now();
      console.error(
        `${name}: stopping the run at the next step (once published: rolling back); ${name} again to end it at once`,
      );
      stop.abort(name);
    };
    process.on("SIGINT", interrupt);
    process.on("SIGTERM", interrupt);
    try {
      const result = await runPipeline(config, {
        dryRun: opts.dryRun ?? false,
        ...(opts.forcePublish ? { forcePublish: { reason: opts.reason!.trim() } } : {}),
        signal: stop.signal,
      });
      console.log(`record: ${result.files.html}`);
      process.exitCode = result.exitCode;
    } finally {
      process.off("SIGINT", interrupt);
      process.off("SIGTERM", interrupt);
    }
  });

program
  .command("status")
  .description("what serves now in models/current and models/challenger, and the last runs")
  .option("--config <file>", CONFIG_HELP, "pipeline.json")
  .option("--limit <n>", "runs listed", nonNegativeInt, 5)
  .action(async (opts: { config: string; limit: number }) => {
    await withRegistry(opts.config, async (registry) => {
      console.log(formatStatus(await pipelineStatus(registry, opts.limit)));
    });
  });

program
  .command("history")
  .description("the run records, newest first: outcome, model, reason")
  .option("--config <file>", CONFIG_HELP, "pipeline.json")
  .option("--limit <n>", "records listed", positiveInt, 20)
  .option("--json", "the records themselves, as a JSON array")
  .action(async (opts: { config: string; limit: number; json?: boolean }) => {
    await withRegistry(opts.config, async (registry) => {
      const records = await runHistory(registry, opts.limit);
      if (opts.json) console.log(JSON.stringify(records, null, 2));
      else if (records.length === 0) console.log("no runs recorded");
      else for (const r of records) console.log(recordLine(r));
    });
  });

program
  .command("rollback")
  .description("point back at the model the pointer named before the current one (from the run records)")
  .option("--config <file>", CONFIG_HELP, "pipeline.json")
  .option("--to <prefix>", "this models/<sha256>/ prefix instead (verified whole first)")
  .addOption(
    new Option("--pointer <name>", "current or challenger")
      .argParser(pointerOption)
      .default("models/current", "current"),
  )
  .action(async (opts: { config: string; to?: string; pointer: PointerName }) => {
    await withRegistry(opts.config, async (registry) => {
      const record = await rollback(registry, { pointer: opts.pointer, ...(opts.to ? { to: opts.to } : {}) });
      console.log(`rolled back: ${record.reason}`);
    });
  });

program
  .command("promote")
  .description("the challenger becomes the champion (models/challenger → models/current), recorded")
  .option("--config <file>", CONFIG_HELP, "pipeline.json")
  .action(async (opts: { config: string }) => {
    await withRegistry(opts.config, async (registry) => {
      const record = await promote(registry);
      console.log(`promoted: ${record.reason}`);
    });
  });

program
  .command("gc")
  .description(
    "delete published models that no pointer and none of the newest N run records name (a pointer's rollback target is always kept)",
  )
  .option("--config <file>", CONFIG_HELP, "pipeline.json")
  .requiredOption(
    "--keep <n>",
    "the newest N run records that name a model keep the models they name",
    nonNegativeInt,
  )
  .option("--dry-run", "list what would be deleted, delete nothing")
  .action(async (opts: { config: string; keep: number; dryRun?: boolean }) => {
    await withRegistry(opts.config, async (registry) => {
      const record = await collectGarbage(registry, opts.keep, { dryRun: opts.dryRun ?? false });
      console.log(`gc: ${record.reason}`);
      for (const prefix of record.gc?.deleted ?? [])
        console.log(`  ${opts.dryRun ? "would delete" : "deleted"} ${prefix}`);
    });
  });

program
  .command("unlock")
  .description(
    "remove the lock a killed run left: at once when its process on this host is gone or it expired",
  )
  .option("--config <file>", CONFIG_HELP, "pipeline.json")
  .option("--force", "remove it although its holder may still be running")
  .action(async (opts: { config: string; force?: boolean }) => {
    await withRegistry(opts.config, async (registry) => {
      const record = await unlock(registry, { force: opts.force ?? false });
      console.log(record ? `unlocked: ${record.reason}` : "no lock held");
    });
  });

await runCli(async () => {
  await program.parseAsync();
});
