/** The part of workerd's "cloudflare:workers" module the edge tests use (no @cloudflare/workers-types here). */
declare module "cloudflare:workers" {
  /** The `main` worker's exports (wrangler.toml), running in the test's isolate. */
  export const exports: { default: { fetch(request: Request): Promise<Response> } };

  interface TestR2Bucket {
    put(key: string, value: ArrayBuffer | string): Promise<unknown>;
    get(
      key: string,
    ): Promise<{ size: number; arrayBuffer(): Promise<ArrayBuffer>; text(): Promise<string> } | null>;
    delete(key: string): Promise<void>;
  }
  interface TestKvNamespace {
    put(key: string, value: string): Promise<void>;
    get(key: string): Promise<string | null>;
    delete(key: string): Promise<void>;
  }
  /** Bindings miniflare gives the tests (vitest.config.ts). */
  export const env: { TEST_MODELS: TestR2Bucket; TEST_POINTERS: TestKvNamespace };
}
