/** A model the exporter refuses to write; the message names what is wrong (CLI: one line). */
export class ExportError extends Error {
  override name = "ExportError";
}
