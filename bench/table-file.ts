/**
 * A bench's own rewrite of a CSV or JSONL data file (a split, a filter): the header and the rows
 * as they stand, written back in the same format. CSV goes through papaparse, so quoted
 * delimiters and newlines stay inside their field; JSONL rows stay the lines they were.
 */
import { readFile, writeFile } from "node:fs/promises";
import Papa from "papaparse";

/** A CSV file's header and fields per row (an empty file: no header, no rows), or JSONL's lines. */
export type TableRows =
  | { format: "csv"; header: string[]; rows: string[][] }
  | { format: "jsonl"; rows: string[] };

export async function readTable(
  path: string,
  format: "csv" | "jsonl",
  delimiter: string,
): Promise<TableRows> {
  const text = await readFile(path, "utf8");
  if (format === "jsonl") return { format, rows: text.split("\n").filter((line) => line.trim() !== "") };
  const [header = [], ...rows] = Papa.parse<string[]>(text, { skipEmptyLines: true, delimiter }).data;
  return { format, header, rows };
}

/** `table` with only `rows` (which must be its own kind of row), written to `path`. */
export async function writeTable(path: string, table: TableRows, delimiter: string): Promise<void> {
  const text =
    table.format === "jsonl"
      ? table.rows.join("\n")
      : Papa.unparse([table.header, ...table.rows], { delimiter });
  await writeFile(path, `${text}\n`);
}

/** The rows of `table` whose index `keep` holds. */
export function keepRows(table: TableRows, keep: (row: number) => boolean): TableRows {
  return table.format === "jsonl"
    ? { ...table, rows: table.rows.filter((_, i) => keep(i)) }
    : { ...table, rows: table.rows.filter((_, i) => keep(i)) };
}
