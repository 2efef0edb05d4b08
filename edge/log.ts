/** JSON log lines (Workers Logs and `wrangler tail` index their fields). */

export type LogLevel = "info" | "warn" | "error";

export function logLine(level: LogLevel, event: string, fields: Record<string, unknown>): void {
  console.log(JSON.stringify({ level, event, ts: new Date().toISOString(), ...fields }));
}

export function describeError(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/** What a route adds to its request's log line. */
export interface RequestLogFields {
  candidates?: number;
  model?: { id: string; version: string };
  /** A/B arm that served: champion or challenger. */
  arm?: string;
  /** The arm the user was assigned, only when another served (a challenger not loaded here). */
  assigned?: string;
  /** Which graph scored: "plain", or "factorised" (user/context part once per request). */
  graph?: string;
  /** The fallback reason when the model could not serve, else absent. */
  fallback?: string;
  /** The error behind a fallback, "Name: message". */
  error?: string;
  /** Proxy mode: visitor values read as missing because their feature cannot take them ("user.age: reason"). */
  ignored?: string[];
  /**
   * Rerank: how many feature names the model does not read the answer lists in `ignored` (at
   * most 10: 10 also when there were more). The names stay out of the log: they are the client's
   * text, and a count is what an operator watches for after a model change.
   */
  unknownFeatures?: number;
}
