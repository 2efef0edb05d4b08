/** JSON log lines (Workers Logs and `wrangler tail` index their fields). */

export type LogLevel = "info" | "warn" | "error";

export function logLine(level: LogLevel, event: string, fields: Record<string, unknown>): void {
  console.log(JSON.stringify({ level, event, ts: new Date().toISOString(), ...fields }));
}

export function describeError(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
