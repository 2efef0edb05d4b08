/**
 * A cursor over one protobuf message's fields, bounded by the message's bytes, for the graph
 * checks (graph-ops.ts, expand-bound.ts): it never reads past the message and reports anything a
 * protobuf parser could not read (a varint past the end or over 10 bytes, a length past the end of
 * its message, a field number 0, group or reserved wire types) through the caller's `malformed`.
 */

export const VARINT = 0;
export const FIXED64 = 1;
export const LENGTH_DELIMITED = 2;
export const FIXED32 = 5;

/** Names are shown at most this long in messages; an allowed name is far shorter. */
const SHOWN_BYTES = 64;

/**
 * The fields of one message, bytes[start, end), in order. After next(): `field` and `wire`;
 * for a varint, `value` (its low 32 bits, unsigned: what an int32 or enum field keeps), `wide`
 * (it needs more than 32 bits) and its bytes[start, stop) (intAt reads all 64 bits); for a
 * length-delimited field, its payload bytes[start, stop). Other values are skipped.
 */
export class Fields {
  field = 0;
  wire = 0;
  value = 0;
  wide = false;
  start = 0;
  stop = 0;
  private pos: number;

  constructor(
    private readonly bytes: Uint8Array,
    start: number,
    private readonly end: number,
    private readonly malformed: (why: string) => never,
  ) {
    this.pos = start;
  }

  next(): boolean {
    if (this.pos >= this.end) return false;
    const at = this.pos;
    this.varint();
    const field = this.value >>> 3;
    const wire = this.value & 7;
    if (this.wide || field === 0) this.malformed(`a field number out of range at byte ${at}`);
    this.field = field;
    this.wire = wire;
    switch (wire) {
      case VARINT:
        this.start = this.pos;
        this.varint();
        this.stop = this.pos;
        break;
      case FIXED64:
        this.skip(8, field);
        break;
      case FIXED32:
        this.skip(4, field);
        break;
      case LENGTH_DELIMITED: {
        this.varint();
        if (this.wide || this.value > this.end - this.pos)
          this.malformed(`field ${field} at byte ${at} runs past the end of its message`);
        this.start = this.pos;
        this.stop = this.pos + this.value;
        this.pos = this.stop;
        break;
      }
      default:
        this.malformed(`wire type ${wire} (field ${field} at byte ${at}) is not one ONNX uses`);
    }
    return true;
  }

  /** A field the walker checks must have the wire type its definition gives it. */
  expect(wire: number): void {
    if (this.wire !== wire)
      this.malformed(`field ${this.field} has wire type ${this.wire} where onnx.proto says ${wire}`);
  }

  private varint(): void {
    const at = this.pos;
    let low = 0;
    let wide = false;
    for (let i = 0; ; i++) {
      if (this.pos >= this.end) this.malformed(`a varint at byte ${at} runs past the end of its message`);
      if (i === 10) this.malformed(`a varint at byte ${at} is longer than 10 bytes`);
      const byte = this.bytes[this.pos++]!;
      const bits = byte & 0x7f;
      if (i < 4) low |= bits << (7 * i);
      else if (i === 4) {
        low |= (bits & 0x0f) << 28;
        if (bits > 0x0f) wide = true;
      } else if (bits !== 0) wide = true;
      if (byte < 0x80) break;
    }
    this.value = low >>> 0;
    this.wide = wide;
  }

  private skip(count: number, field: number): void {
    if (count > this.end - this.pos) this.malformed(`field ${field} runs past the end of its message`);
    this.pos += count;
  }
}

/**
 * The signed integer of `bits` bits a varint at bytes[start, stop) holds (a Fields varint's
 * range: at most 10 bytes, ending in a byte under 0x80; an int32 keeps the low 32 bits, as a
 * parser does), as a number: exact to 2^53, its magnitude and sign beyond.
 */
export function intAt(bytes: Uint8Array, start: number, stop: number, bits: 32 | 64): number {
  // Up to 4 bytes hold under 2^28, the same in either width: no BigInt (dims, axes, attributes).
  if (stop - start <= 4) {
    let small = 0;
    for (let i = stop - 1; i >= start; i--) small = small * 128 + (bytes[i]! & 0x7f);
    return small;
  }
  let value = 0n;
  for (let i = start; i < stop; i++) value |= BigInt(bytes[i]! & 0x7f) << BigInt(7 * (i - start));
  return Number(BigInt.asIntN(bits, value));
}

/**
 * The values of a packed repeated varint field at bytes[start, stop), each read as intAt reads it,
 * at most `most` of them. A varint cut short or over 10 bytes long is refused.
 */
export function packedVarints(
  bytes: Uint8Array,
  start: number,
  stop: number,
  bits: 32 | 64,
  most: number,
  each: (value: number) => void,
  refuse: (why: string) => never,
): void {
  let at = start;
  for (let read = 0; at < stop && read < most; read++) {
    const first = at;
    while (at < stop && at - first < 10 && bytes[at]! >= 0x80) at++;
    if (at >= stop || bytes[at]! >= 0x80)
      refuse(`not an ONNX protobuf: a packed varint at byte ${first} is cut short or too long`);
    at++;
    each(intAt(bytes, first, at, bits));
  }
}

/**
 * bytes[start, stop) for a message: printable ASCII as is, other bytes, the quote and the backslash as \\xNN,
 * cut at SHOWN_BYTES.
 */
export function text(bytes: Uint8Array, start: number, stop: number): string {
  let out = "";
  const end = Math.min(stop, start + SHOWN_BYTES);
  for (let i = start; i < end; i++) {
    const b = bytes[i]!;
    const plain = b >= 0x20 && b < 0x7f && b !== 0x22 && b !== 0x5c;
    out += plain ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, "0")}`;
  }
  return stop > end ? `${out}…` : out;
}
