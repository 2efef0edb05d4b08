/** Module types that wrangler's [[rules]] create (wrangler.toml): ONNX files as data, wasm precompiled. */

declare module "*.onnx" {
  const bytes: ArrayBuffer;
  export default bytes;
}

/** A `WebAssembly.Module`, compiled by wrangler at build time (workerd cannot compile at run time). */
declare module "*.wasm" {
  const compiled: object;
  export default compiled;
}

/** The onnxruntime snapshot (runtime/ort-snapshot.ts), bundled as data. */
declare module "*/ort-snapshot.bin" {
  const bytes: ArrayBuffer;
  export default bytes;
}
