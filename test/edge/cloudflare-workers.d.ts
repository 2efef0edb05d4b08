/** The part of workerd's "cloudflare:workers" module the edge tests use (no @cloudflare/workers-types here). */
declare module "cloudflare:workers" {
  /** The `main` worker's exports (wrangler.toml), running in the test's isolate. */
  export const exports: { default: { fetch(request: Request): Promise<Response> } };
}
