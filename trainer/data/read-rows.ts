/** Streams the records of a CSV or JSONL log as described by a dataset spec. */
import { createReadStream } from "node:fs";
import { createInterface } from "node:readline";
import { type Duplex, pipeline, type Readable, Transform } from "node:stream";
import { createGunzip } from "node:zlib";
import Papa from "papaparse";
import type { DatasetSpec } from "../../shared/spec.ts";

export type RawRecord = Record<string, unknown>;

export interface SourceRecord {
  record: RawRecord;
  /** 1-based line in the file where the record starts (for error messages). */
  line: number;
  /**
   * Why the row is malformed, when it is: a CSV row with more or fewer fields than the header
   * (a log cut off mid-line). Readers that check rows make it a DataError, within the error budget.
   */
  problem?: string;
}

export class DataError extends Error {
  override name = "DataError";
}

/**
 * The line breaks in a file (gunzipped for .gz), plus one for a last line without one: how many
 * rows a log has, give or take its header and any line breaks inside quoted CSV fields. A pass
 * over the raw bytes, for sizing what depends on the row count before the file is read.
 */
export async function countLines(file: string): Promise<number> {
  let lines = 0;
  let last = 0x0a;
  try {
    for await (const chunk of openBytes(file) as AsyncIterable<Buffer>) {
      lines += countNewlines(chunk);
      if (chunk.length > 0) last = chunk[chunk.length - 1]!;
    }
  } catch (error) {
    // Named as the readers name it: this pass is the first to open the file.
    throw new DataError(`${file}: ${error instanceof Error ? error.message : String(error)}`);
  }
  return last === 0x0a ? lines : lines + 1;
}

/** A text file's bytes: gunzipped for .gz, checked to be UTF-8 (utf8Checked). */
export function openText(file: string): Readable {
  return openBytes(file, utf8Checked(file));
}

/**
 * A file's bytes, gunzipped for .gz (in any case: DAY.CSV.GZ read as text would be a header of
 * binary garbage), through `then` if given. pipeline, not pipe: pipe does not pass a source's
 * error on, so a missing file or a corrupt .gz was an unhandled stream error that killed the
 * process instead of the error readers turn into one line.
 */
function openBytes(file: string, then?: Duplex): Readable {
  const stages: (Readable | Duplex)[] = [createReadStream(file)];
  if (file.toLowerCase().endsWith(".gz")) stages.push(createGunzip());
  if (then) stages.push(then);
  if (stages.length === 1) return stages[0] as Readable;
  // Errors reach the caller through the last stage, destroyed with them.
  return pipeline(stages as [Readable, ...Duplex[]], () => {}) as unknown as Readable;
}

/**
 * Passes bytes through unchanged, failing at the first that are not UTF-8. Decoding replaces such
 * bytes with U+FFFD without a word: a Latin-1 export's "café" and "cafè" would both read "caf\uFFFD",
 * one category. A UTF-16 file (a byte-order mark FF FE or FE FF) is named as such: read as UTF-8,
 * its header would match no column.
 */
function utf8Checked(file: string): Transform {
  const decoder = new TextDecoder("utf-8", { fatal: true });
  let lines = 1;
  let offset = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      if (offset === 0 && chunk.length >= 2 && chunk[0]! + chunk[1]! === 0xff + 0xfe && chunk[0]! >= 0xfe)
        return done(
          new DataError(`${file}: the file is UTF-16 (it starts with a byte-order mark): save it as UTF-8`),
        );
      try {
        decoder.decode(chunk, { stream: true });
      } catch {
        const at = firstNonUtf8(chunk);
        const line = lines + countNewlines(chunk.subarray(0, at));
        return done(
          new DataError(
            `${file}:${line}: not UTF-8 (byte 0x${chunk[at]!.toString(16).toUpperCase()} at byte ${offset + at}): save the file as UTF-8 (a Latin-1 or Windows-1252 export?)`,
          ),
        );
      }
      lines += countNewlines(chunk);
      offset += chunk.length;
      done(null, chunk);
    },
    flush(done) {
      try {
        decoder.decode();
        done();
      } catch {
        done(new DataError(`${file}: not UTF-8: the file ends inside a character`));
      }
    },
  });
}

function countNewlines(bytes: Uint8Array): number {
  let n = 0;
  for (let i = bytes.indexOf(10); i >= 0; i = bytes.indexOf(10, i + 1)) n++;
  return n;
}

/** The index of the first byte that does not continue a valid UTF-8 sequence (a character cut by the chunk's end counts as valid). */
function firstNonUtf8(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i]!;
    const length =
      b < 0x80 ? 1 : b >= 0xc2 && b < 0xe0 ? 2 : b >= 0xe0 && b < 0xf0 ? 3 : b >= 0xf0 && b < 0xf5 ? 4 : 0;
    if (length === 0) return i;
    for (let k = 1; k < length && i + k < bytes.length; k++) if ((bytes[i + k]! & 0xc0) !== 0x80) return i;
    i += length;
  }
  return Math.max(0, bytes.length - 1);
}

/**
 * What reading needs of a spec: the file layout, and (when given) the features, tasks, group and
 * truth columns, so that a CSV header naming one of those twice is an error, not a guess.
 */
export type ReadOptions = Pick<DatasetSpec, "format" | "delimiter" | "header" | "columns"> &
  Partial<Pick<DatasetSpec, "features" | "tasks" | "group" | "truth" | "trim">>;

export async function* readRecords(file: string, spec: ReadOptions): AsyncGenerator<SourceRecord> {
  if (spec.format === "jsonl") yield* readJsonl(file, spec);
  else yield* readCsv(file, spec);
}

const RAGGED = "the row does not have one field per column of the header";

/**
 * The longest incomplete record kept while waiting for its end. Past it the text is almost surely a
 * quote left open, which would otherwise swallow the rest of the log into memory.
 */
const MAX_RECORD_CHARS = 64 * 1024 * 1024;

/** What papaparse's core parser returns for one piece of text. */
interface ParsedText {
  data: string[][];
  errors: Papa.ParseError[];
  meta: { cursor: number };
}

/**
 * CSV through papaparse's core parser (Papa.Parser), fed the file one chunk at a time by a
 * for-await loop. Papa.parse's own stream reading is not used: its pause() stops the rows but not
 * the reads, so a slow consumer would end up with the whole file queued in memory. Pulling chunks
 * here lets the consumer set the pace; memory holds one chunk's records and one incomplete record.
 * Papa.Parser is exported but not part of papaparse's documented API: the version is pinned, and
 * test/trainer/read-rows.test.ts covers what this reader relies on.
 *
 * The parser sees arrays of strings (its fastest mode); the header, empty lines, ragged rows and
 * line numbers are handled here so that they behave as the spec says, whatever papaparse's
 * header mode would do (it renames duplicate names and guesses the line break).
 */
async function* readCsv(file: string, spec: ReadOptions): AsyncGenerator<SourceRecord> {
  const delimiter = spec.delimiter ?? ",";
  // papaparse would quietly fall back to "," for these.
  if (Papa.BAD_DELIMITERS.includes(delimiter))
    throw new DataError(`${file}: ${JSON.stringify(delimiter)} cannot be the CSV delimiter`);
  if (!spec.header && !spec.columns)
    throw new DataError(`${file}: without a header row the spec must name the columns ("columns")`);
  const csv = csvRecords(
    file,
    delimiter,
    spec.header ? undefined : spec.columns,
    readColumns(spec),
    spec.trim ?? true,
  );
  const source = openText(file);
  // Strings of whole characters: the decoder holds back the bytes of a character that a read
  // splits, which the parser (working on strings) could not put together again.
  source.setEncoding("utf8");
  try {
    for await (const chunk of source as AsyncIterable<string>) {
      const { records, error } = csv.add(chunk);
      for (const record of records) yield record;
      if (error) throw error;
    }
    const { records, error } = csv.end();
    for (const record of records) yield record;
    if (error) throw error;
  } catch (error) {
    if (error instanceof DataError) throw error;
    throw new DataError(`${file}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/**
 * Records that a piece of text completes, in arrays rather than a generator (each record
 * through a generator costs a promise more in the reader). A malformed quote ends the records
 * with its error, to be thrown once the records before it are out.
 */
interface Batch {
  records: SourceRecord[];
  error?: DataError;
}

/** The records of CSV text given in pieces: `add` for each piece, `end` after the last. */
function csvRecords(
  file: string,
  delimiter: string,
  names: string[] | undefined,
  reads: ReadonlySet<string>,
  trim: boolean,
) {
  if (names) {
    const twice = repeated(names, reads);
    if (twice !== undefined) throw new DataError(`${file}: columns: names column "${twice}" twice`);
  }
  let columns = names;
  let make: ((row: string[]) => RawRecord) | undefined;
  let parser: Papa.Parser | undefined;
  /** "\n", with a "\r" before it removed from the row (CRLF and mixed files); "\r" for CR-only files. */
  let newline: "\n" | "\r" = "\n";
  /** Text after the last complete record, and the line it starts on. */
  let pending = "";
  let line = 1;
  let started = false;
  /**
   * A record longer than the text so far is parsed again only once the text has doubled (or passed
   * MAX_RECORD_CHARS), so that a record spanning many chunks costs linear time, not one full parse
   * per chunk.
   */
  let parseAt = 0;

  function take(final: boolean): Batch {
    const records: SourceRecord[] = [];
    const text = pending;
    if (!parser) {
      newline = lineBreak(text);
      parser = new Papa.Parser({ delimiter, newline, quoteChar: '"' });
    }
    const { data, errors, meta } = parser.parse(text, 0, !final) as ParsedText;
    const cursor = final ? text.length : meta.cursor;
    // Only a quoted field can hold a line break, so text without quotes has one line per row.
    const quoted = text.includes('"');
    pending = text.slice(cursor);
    parseAt = cursor === 0 ? Math.min(text.length * 2, MAX_RECORD_CHARS + 1) : 0;
    // An error in the incomplete last row may be a false alarm (text that ends after a closing
    // quote and a space, before the delimiter that makes them valid); that row is parsed again
    // with more text, so only complete rows' errors count.
    let bad: Papa.ParseError | undefined;
    let badRow = data.length;
    for (const error of errors) {
      const row = final ? Math.min(error.row ?? 0, data.length - 1) : (error.row ?? data.length);
      if (row < badRow) [bad, badRow] = [error, row];
    }
    /** Per row, whether its last field was quoted: worked out only when a row needs it. */
    let lastQuoted: boolean[] | undefined;
    for (let i = 0; i < data.length; i++) {
      const row = data[i]!;
      const start = line;
      line += quoted ? 1 + breaks(row, newline) : 1;
      if (i === badRow)
        return { records, error: new DataError(`${file}: line ${start}: ${quoteProblem(bad!)}`) };
      if (newline === "\n") {
        // The "\r" of a CRLF line ends an unquoted last field; a quoted one's is its own (the
        // parser drops whitespace between a closing quote and the line break). Only a quoted
        // field ending in "\r" leaves '\r"' in the text, so most text needs no closer look.
        const last = row[row.length - 1]!;
        if (last.charCodeAt(last.length - 1) === 13) {
          lastQuoted ??= text.includes('\r"') ? lastFieldsQuoted(text, delimiter, data.length) : [];
          if (!lastQuoted[i]) row[row.length - 1] = last.slice(0, -1);
        }
      }
      if (row.length === 1 && row[0] === "") continue; // an empty line
      if (!columns) {
        // Header names are trimmed as values are ("trim"): "id, user_id, price" names user_id.
        columns = trim ? row.map((name) => name.trim()) : row;
        const twice = repeated(columns, reads);
        if (twice !== undefined)
          return {
            records,
            error: new DataError(`${file}: line ${start}: the header names column "${twice}" twice`),
          };
        continue;
      }
      make ??= recordMaker(columns);
      if (row.length === columns.length) {
        records.push({ record: make(row), line: start });
        continue;
      }
      // A ragged row: the fields it has, by position; fields past the header's are dropped.
      const record: RawRecord = {};
      const n = Math.min(row.length, columns.length);
      for (let j = 0; j < n; j++) record[columns[j]!] = detached(row[j]!);
      records.push({ record, line: start, problem: RAGGED });
    }
    if (pending.length > MAX_RECORD_CHARS) {
      const error = new DataError(
        `${file}: line ${line}: a record longer than 64 MiB; is a quote left open?`,
      );
      return { records, error };
    }
    return { records };
  }

  return {
    add(chunk: string): Batch {
      if (!started) {
        started = true;
        // A byte-order mark (spreadsheet exports) would otherwise stick to the first column's name
        // (and hide an opening quote from the parser).
        if (chunk.charCodeAt(0) === 0xfeff) chunk = chunk.slice(1);
      }
      pending += chunk;
      return pending.length >= parseAt ? take(false) : { records: [] };
    },
    end(): Batch {
      return take(true);
    },
  };
}

/**
 * The file's line break, from its first piece: the first one outside quotes (a quoted header name
 * may hold another). "\r" alone is a CR-only file (old Mac exports), whose quoted fields may hold
 * "\n"; "\n" covers LF, CRLF and files that mix them. A "\r" that ends the piece may be the first
 * half of a CRLF. With no line break outside quotes (a stray quote in the header), a piece with a
 * "\r" and no "\n" is CR-only.
 */
function lineBreak(text: string): "\n" | "\r" {
  let inQuotes = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 34) inQuotes = !inQuotes;
    else if (inQuotes) continue;
    else if (c === 10) return "\n";
    else if (c === 13) return i + 1 < text.length && text.charCodeAt(i + 1) !== 10 ? "\r" : "\n";
  }
  const cr = text.indexOf("\r");
  return text.includes("\n") || cr === -1 || cr === text.length - 1 ? "\n" : "\r";
}

/**
 * Whether the last field of each of the first `rows` rows of `text` was quoted, with the rows
 * split as papaparse's parser splits them with newline "\n" (papaparse does not say): a field that
 * starts with a quote is quoted; in it "" is a quote, and a quote followed by whitespace and then
 * the delimiter, a "\n" or the end of the text closes it; any other quote in it is data (and a
 * parse error, so no row kept depends on it). A field that does not start with a quote ends at the
 * next delimiter or "\n".
 */
function lastFieldsQuoted(text: string, delimiter: string, rows: number): boolean[] {
  const quoted: boolean[] = [];
  /** Whitespace only from `from` to `to`: its length, else 0 (papaparse's extraSpaces). */
  const spaces = (from: number, to: number) => {
    if (to === -1) return 0;
    const between = text.substring(from, to);
    return between !== "" && between.trim() === "" ? between.length : 0;
  };
  let at = 0; // where a field starts
  while (quoted.length < rows) {
    if (text.charCodeAt(at) !== 34) {
      const d = text.indexOf(delimiter, at);
      const nl = text.indexOf("\n", at);
      if (d !== -1 && (nl === -1 || d < nl)) {
        at = d + delimiter.length;
        continue;
      }
      quoted.push(false);
      if (nl === -1) break;
      at = nl + 1;
      continue;
    }
    for (let q = text.indexOf('"', at + 1); ; q = text.indexOf('"', q + 2)) {
      if (q === -1 || q === text.length - 1) {
        quoted.push(true);
        return quoted;
      }
      if (text.charCodeAt(q + 1) === 34) continue;
      const d = text.indexOf(delimiter, q + 1);
      const nl = text.indexOf("\n", q + 1);
      const beforeDelimiter = q + 1 + spaces(q + 1, nl === -1 ? d : Math.min(d, nl));
      if (text.startsWith(delimiter, beforeDelimiter)) {
        at = beforeDelimiter + delimiter.length;
        break;
      }
      const beforeBreak = q + 1 + spaces(q + 1, nl);
      if (text.charCodeAt(beforeBreak) === 10) {
        quoted.push(true);
        at = beforeBreak + 1;
        break;
      }
    }
  }
  return quoted;
}

/** The columns a spec reads: a CSV header giving one of them twice leaves which field ambiguous. */
function readColumns(spec: ReadOptions): Set<string> {
  return new Set([
    ...(spec.features ?? []).map((f) => f.name),
    ...(spec.tasks ?? []).map((t) => t.column),
    ...(spec.group === undefined ? [] : [spec.group]),
    ...Object.values(spec.truth ?? {}),
  ]);
}

/** The first of `reads` that `columns` names more than once (other repeated names do no harm). */
function repeated(columns: readonly string[], reads: ReadonlySet<string>): string | undefined {
  const seen = new Set<string>();
  for (const name of columns) {
    if (!reads.has(name)) continue;
    if (seen.has(name)) return name;
    seen.add(name);
  }
  return undefined;
}

/** Line breaks inside a row's fields (quoted ones), so the next row's line number stays right. */
function breaks(row: string[], newline: string): number {
  let n = 0;
  for (const field of row)
    for (let at = field.indexOf(newline); at !== -1; at = field.indexOf(newline, at + 1)) n++;
  return n;
}

/**
 * A field as a string of its own. V8 makes substrings of 13 characters or more as views into the
 * text they were cut from, so one field kept by a consumer (a category in a vocabulary, a group id)
 * would keep its whole chunk alive, and a vocabulary built over a long log most of the log.
 * Concatenating and slicing makes V8 copy the characters into a string the size of the field.
 */
function detached(field: string): string {
  return field.length < 13 ? field : ` ${field}`.slice(1);
}

/**
 * Makes a record from a row with one field per column: a function with an object literal of the
 * column names, which V8 builds from one template, about twice as fast as adding the properties
 * one by one (the bulk of the reader's time on wide files). The names enter the source only as
 * JSON string literals; "__proto__" is written as a computed key so that it stays a property and
 * does not set the prototype. A name given twice keeps its last field, as the loop would.
 */
function recordMaker(columns: readonly string[]): (row: string[]) => RawRecord {
  const fields = columns.map((name, j) => {
    const key = JSON.stringify(name);
    return `${name === "__proto__" ? `[${key}]` : key}: own(row[${j}])`;
  });
  const make = new Function("own", `return (row) => ({ ${fields.join(", ")} });`);
  return make(detached) as (row: string[]) => RawRecord;
}

function quoteProblem(error: Papa.ParseError): string {
  if (error.code === "MissingQuotes") return "a quoted field is not closed before the end of the file";
  if (error.code === "InvalidQuotes")
    return "a quote in a quoted field is neither doubled nor followed by the delimiter or the end of the line";
  return error.message;
}

/** JSON lines as records. A line that is no JSON object stops the read; other bad rows are flagged. */
async function* readJsonl(file: string, spec: ReadOptions): AsyncGenerator<SourceRecord> {
  const rules = jsonLineRules(spec);
  const lines = createInterface({ input: openText(file), crlfDelay: Number.POSITIVE_INFINITY });
  let line = 0;
  try {
    for await (const text of lines) {
      line++;
      const row = parseJsonLine(text, line, rules);
      if (row === undefined) continue;
      if (row.unreadable) throw new DataError(`${file}:${line}: ${row.problem}`);
      yield row;
    }
  } catch (error) {
    if (error instanceof DataError) throw error;
    throw new DataError(`${file}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** What reading a JSON line needs of the spec, worked out once per file (jsonLineRules). */
export interface JsonLineRules {
  /** Records with no prototype (ownKeys): the spec reads a key named like a prototype property. */
  own: boolean;
}

export function jsonLineRules(spec: ReadOptions): JsonLineRules {
  return { own: readsPrototypeName(spec) };
}

/** A JSON line read: `unreadable` when it is no JSON object at all (`problem` says which). */
export interface JsonLine extends SourceRecord {
  unreadable?: true;
}

/**
 * One line of a JSONL file (1-based `line`; a byte-order mark before the first is dropped) as a
 * record, or undefined for a blank line. A line that is not JSON, or JSON but not an object, comes
 * back `unreadable`, with an empty record and the reason in `problem`: the trainer stops there, the
 * pipeline counts it as a bad line. A key given twice in one record keeps its last value, as
 * JSON.parse does everywhere: finding repeats costs a scan of every line's text (10-15 % of the
 * read), for logs whose writers almost never repeat a key.
 */
export function parseJsonLine(raw: string, line: number, rules: JsonLineRules): JsonLine | undefined {
  const text = line === 1 && raw.charCodeAt(0) === 0xfeff ? raw.slice(1) : raw;
  if (text.trim() === "") return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { record: {}, line, problem: "not valid JSON", unreadable: true };
  }
  if (value === null || typeof value !== "object" || Array.isArray(value))
    return { record: {}, line, problem: "expected a JSON object per line", unreadable: true };
  return { record: rules.own ? ownKeys(value as RawRecord) : (value as RawRecord), line };
}

/**
 * A parsed JSON line with no prototype, so that it holds its own keys only: a key the line leaves
 * out reads as missing (undefined), also one named "constructor", "toString" or "__proto__",
 * which would otherwise read Object.prototype's. Needed only where readsPrototypeName is true:
 * it slows the reads of every record a little.
 */
function ownKeys(record: RawRecord): RawRecord {
  return Object.setPrototypeOf(record, null) as RawRecord;
}

/** Whether the spec reads a column named like a property of Object.prototype. */
function readsPrototypeName(spec: ReadOptions): boolean {
  for (const name of readColumns(spec)) if (name in Object.prototype) return true;
  return false;
}
