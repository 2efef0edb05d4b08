/** The worker's bindings: configuration from wrangler.toml [vars] and secrets. */
import type { RequestLogFields } from "./http/request-log.ts";

export interface EdgeEnv {
  /** Secret: comma-separated API keys. When set, /v1/* needs `Authorization: Bearer <key>`. */
  MTRANK_API_KEYS?: string;
  /** Comma-separated origins allowed by CORS (e.g. "https://shop.example"); "*" allows any. */
  MTRANK_CORS_ORIGINS?: string;
}

export type EdgeBindings = { Bindings: EdgeEnv; Variables: { log: RequestLogFields } };

export function listSetting(value: string | undefined): string[] {
  return (value ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}
